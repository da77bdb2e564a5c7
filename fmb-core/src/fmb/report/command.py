"""``fmb report RUN_DIR... [--out FILE.html]`` (heavy imports happen inside the command)."""

from __future__ import annotations

import click

EMBEDDING_MAPS = ("auto", "pca", "umap")


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="HTML file to write (default RUN_DIR/report.html, or report.html beside several runs).",
)
@click.option(
    "--top-k", type=click.IntRange(1, 200), default=12, show_default=True, help="Objects per ranking in the gallery."
)
@click.option(
    "--embedding-map",
    type=click.Choice(EMBEDDING_MAPS),
    default="auto",
    show_default=True,
    help="2-D map of the embeddings: UMAP (umap-learn) or PCA; auto = UMAP where installed "
    "and there are >= 500 objects.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the embedding map.")
def report_cmd(run_dirs: tuple[str, ...], out: str | None, top_k: int, embedding_map: str, seed: int) -> None:
    """Write one self-contained HTML report of RUN_DIR(s): metadata, metrics, curves, maps, gallery."""
    from fmb import extras
    from fmb.report.build import build_report
    from fmb.reporting import Reporter

    if embedding_map == "umap":  # a missing extra fails before any work (and any progress line)
        extras.require("umap", "--embedding-map umap")
    path = build_report(list(run_dirs), out, top_k=top_k, embedding_map=embedding_map, seed=seed, reporter=Reporter())
    click.echo(f"report: {path}")
