"""``fmb neighbors OBJECT_ID --run RUN_DIR``: nearest objects by cosine, with their anomaly ranks."""

from __future__ import annotations

import click


@click.command("neighbors")
@click.argument("object_id")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="A run folder.")
@click.option("--modality", default=None, help="Embedding space (image, spectrum, joint; default: the run's first).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Number of neighbours.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def neighbors_cmd(object_id, run_dir, modality, k, as_json) -> None:
    """The K nearest objects to OBJECT_ID (cosine) and their anomaly ranks in the run."""
    import json

    from fmb.probes.embeddings import run_embeddings
    from fmb.probes.neighbors import neighbours

    res, table = run_embeddings(run_dir)
    rows, space = neighbours(table, run_dir, object_id, modality, k, list(res.get("modalities", {})))
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"neighbours of {object_id} in {res['model']['name']}/{space} (cosine)", header_style="bold")
    cols = list(rows[0])
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("-" if r[c] is None else f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    Console().print(t)
