"""``fmb compare RUN_DIR...``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="fmb-compare",
    show_default=True,
    help="Folder for the tables (Parquet + CSV) and summary.json.",
)
@click.option("--modality", default=None, help="Compare only this modality of each run.")
@click.option("--top-k", type=int, default=100, show_default=True, help="k of the top-k sets.")
@click.option(
    "--bootstrap",
    "n_boot",
    type=int,
    default=200,
    show_default=True,
    help="Bootstrap resamples for the 95% intervals (0 = none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
def compare_cmd(runs, out, modality, top_k, n_boot, seed) -> None:
    """Compare systems (model x modality x detector) of run folders (or matrix folders) on their common objects."""
    from rich.console import Console
    from rich.table import Table

    from fmb.compare.compare import compare, write
    from fmb.compare.runs import align, dataset_warning, load_systems
    from fmb.errors import UsageError
    from fmb.reporting import print_table
    from fmb.runs import expand_run_dirs

    runs = [str(r) for r in expand_run_dirs(list(runs))]
    if top_k < 1 or n_boot < 0:
        raise UsageError("--top-k must be positive and --bootstrap non-negative")
    aligned = align(load_systems(list(runs), modality))
    n = len(aligned.object_id)
    console = Console()
    if warning := dataset_warning(list(runs)):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}", highlight=False)
    dropped = {k: v for k, v in aligned.dropped.items() if v}
    console.print(
        f"{len(aligned.names)} systems on {n} common objects"
        + (f"; dropped (not common to all): {', '.join(f'{k}: {v}' for k, v in dropped.items())}" if dropped else "")
    )
    result = compare(aligned, top_k=top_k, n_boot=n_boot, seed=seed)
    write(result, Path(out), [str(r) for r in runs])

    def fmt(p: dict, key: str) -> str:
        v = p[key]
        ci = f" [{p[key + '_lo']:.2f}, {p[key + '_hi']:.2f}]" if key + "_lo" in p else ""
        return f"{v:.3f}{ci}"

    short = {name: f"S{i + 1}" for i, name in enumerate(aligned.names)}
    legend = Table(title="systems", header_style="bold")
    for c in ("id", "system", "objects dropped"):
        legend.add_column(c)
    for name, sid in short.items():
        legend.add_row(sid, name, str(aligned.dropped[name]))
    print_table(legend, console)
    table = Table(title=f"system agreement ({n} common objects; 95% bootstrap intervals)", header_style="bold")
    cols = {
        "spearman": "Spearman",
        "jaccard_top1pct": "Jaccard top 1%",
        f"jaccard_top{result.top_k}": f"Jaccard top {result.top_k}",
        "retention_top1_top1": "top 1% -> 1%",
        "retention_top1_top10": "top 1% -> 10%",
    }
    for c in ["source", "target", *cols.values()]:
        table.add_column(c)
    for p in result.pairs:
        table.add_row(short[p["source"]], short[p["target"]], *(fmt(p, c) for c in cols))
    print_table(table, console)
    click.echo(f"wrote {out}/ (pairs, matrix_*, disagreements, systems: .parquet + .csv; summary.json)")
