"""``fmb leaderboard RUN_DIR...``: one table ranking the systems of run folders or matrix folders."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("leaderboard")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for leaderboard.csv/.parquet (default: the folder given, when it is one matrix folder).",
)
@click.option("--no-write", is_flag=True, help="Only print the table.")
def leaderboard_cmd(run_dirs: tuple[str, ...], out: str | None, no_write: bool) -> None:
    """Rank the systems of RUN_DIR(s) (run folders or matrix folders) by AUROC (higher is better): mean ± sd
    over seeds and bootstrap 95% intervals of AUROC and AP, mean ± sd of P@k and R@k, and the top-k Jaccard
    between seeds; writes leaderboard.csv and .parquet."""
    from fmb.leaderboard import leaderboard, leaderboard_table, write_leaderboard
    from fmb.reporting import print_table
    from fmb.runs import is_run_dir

    df = leaderboard(list(run_dirs))
    print_table(leaderboard_table(df))
    if no_write:
        return
    if out is None and len(run_dirs) == 1 and not is_run_dir(Path(run_dirs[0])):
        out = run_dirs[0]
    if out is None:
        click.echo("(not written: give --out FOLDER to write leaderboard.csv and leaderboard.parquet)", err=True)
        return
    for p in write_leaderboard(df, out):
        click.echo(f"wrote {p}")
