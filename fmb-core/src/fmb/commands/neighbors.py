"""``fmb neighbors OBJECT_ID --run RUN_DIR``: nearest objects by cosine, with their anomaly ranks."""

from __future__ import annotations

import click


@click.command("neighbors")
@click.argument("object_id")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A run folder (a matrix folder: each of its systems).",
)
@click.option("--modality", default=None, help="Embedding space (image, spectrum, joint; default: the run's first).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Number of neighbours.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def neighbors_cmd(object_id, run_dir, modality, k, as_json) -> None:
    """The K nearest objects to OBJECT_ID (cosine) and their anomaly ranks in the run (in each system of a
    matrix folder)."""
    import json

    from fmb.probes.embeddings import run_embeddings
    from fmb.probes.neighbors import neighbours
    from fmb.runs import expand_run_dirs

    dirs = expand_run_dirs(run_dir)
    found = []
    for d in dirs:
        res, table = run_embeddings(str(d))
        rows, space = neighbours(table, str(d), object_id, modality, k, list(res.get("modalities", {})))
        found.append((d, res, rows, space))
    if as_json:
        out = found[0][2] if len(dirs) == 1 else {str(d): rows for d, _, rows, _ in found}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for d, res, rows, space in found:
        _print(object_id, res, rows, space, str(d) if len(dirs) > 1 else None)


def _print(object_id: str, res: dict, rows: list[dict], space: str, where: str | None) -> None:
    from rich.table import Table

    from fmb.reporting import print_table

    t = Table(title=f"neighbours of {object_id} in {res['model']['name']}/{space} (cosine)", header_style="bold")
    cols = list(rows[0])
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("-" if r[c] is None else f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if where:
        t.caption = where
    print_table(t)
