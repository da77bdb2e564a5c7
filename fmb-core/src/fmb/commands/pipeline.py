"""``fmb run``, ``fmb embed``, ``fmb detect``: the benchmark commands (options, configs, what they print).

The work itself is the executor's (:mod:`fmb.commands.execute`, :mod:`fmb.executors.units`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fmb.commands.execute import embed_options, run_options

_MODALITY = click.Choice(["image", "spectrum", "joint", "all"])


def _common(f):
    opts = [
        click.option("--dataset", "datasets", multiple=True, help="Dataset name[:key=value,...] (default synthetic)."),
        click.option("--modality", type=_MODALITY, default=None, help="Embedding to score (default all)."),
        click.option("--weights", default=None, help="auto | random | PATH | hf:REPO[@REV]."),
        click.option("--seed", "seeds", multiple=True, type=int, help="Random seed (repeat for several)."),
        click.option("--device", default=None, help="auto | cpu | cuda | mps."),
        click.option("--batch-size", type=int, default=None, help="Objects per model batch (default 64)."),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16"]),
            default=None,
            help="Forward passes in fp32 (default) or bf16 autocast (other numbers: its own cache entry).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="TOML benchmark file; flags override it.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _configs(config_file: str | None, **overrides: Any) -> list:
    from fmb.config import expand, load_toml, resolve

    data = load_toml(config_file) if config_file else None
    return expand(resolve(data, overrides))


#: the options that name the systems a command scores (``fmb run`` and ``fmb detect``; the config's fields)
SYSTEM_FIELDS = (
    "models",
    "detectors",
    "datasets",
    "modality",
    "weights",
    "seeds",
    "device",
    "batch_size",
    "precision",
    "output",
    "overwrite",
)


def _systems(config_file: str | None, check_dirs: bool, **overrides: Any) -> tuple[Any, list]:
    """(registry, configs) of the systems a command scores: bad names, options and detector parameters, and
    (``check_dirs``) an output folder holding another system's run, fail here, before any work."""
    from fmb.plugins import registry
    from fmb.protocol.run import check_config
    from fmb.runs import check_run_dir

    cfgs, reg = _configs(config_file, **overrides), registry()
    for c in cfgs:
        check_config(reg, c)
    if check_dirs:
        for cfg, out_dir in zip(cfgs, _out_dirs(cfgs, overrides.get("output"))):
            check_run_dir(out_dir, cfg.to_dict(), overwrite=cfg.overwrite)
    return reg, cfgs


def _out_dirs(cfgs: list, output: str | None) -> list[Path]:
    from fmb.executors.plan import out_dirs

    return out_dirs(cfgs, output)


def _reporter(quiet: bool) -> Any:
    from fmb.reporting import Reporter

    ctx = click.get_current_context(silent=True)
    return Reporter(quiet=quiet, debug=bool(ctx and ctx.obj and ctx.obj.get("debug")))


def _print_results(done: list, reporter: Any, report: bool) -> None:
    """What every path prints: the files written, the summary, the per-class table of one system, the reports."""
    from fmb.reporting import per_class_table, print_table, summary_table
    from fmb.runs import REPORT

    for out_dir, _ in done:
        click.echo(f"wrote {Path(out_dir) / 'results.json'}")
    print_table(summary_table(done), reporter.console)
    if len(done) == 1 and (t := per_class_table(done[0][1])):
        print_table(t, reporter.console)
    if len(done) > 1:
        from fmb.leaderboard import CSV, leaderboard, leaderboard_table

        print_table(leaderboard_table(leaderboard([d for d, _ in done])), reporter.console)
        root = Path(done[0][0]).parent
        if (root / CSV).exists():
            click.echo(f"leaderboard: {root / CSV}")
    if report:
        for out_dir, _ in done:
            if (Path(out_dir) / REPORT).exists():
                click.echo(f"report: {Path(out_dir) / REPORT}")
        if len(done) > 1:
            click.echo(
                f"one page comparing all {len(done)} runs: fmb report {' '.join(d for d, _ in done)} --out FILE.html"
            )


@click.command("run")
@click.option("--model", "models", multiple=True, help="Model name[:key=value,...]; repeat for a matrix.")
@click.option("--detector", "detectors", multiple=True, help="Detector name[:key=value,...]; repeat for a matrix.")
@_common
@click.option(
    "--output", default=None, type=click.Path(file_okay=False), help="Results folder (default fmb-results/<system>)."
)
@click.option("--no-report", is_flag=True, help="Do not write the HTML report at the end.")
@click.option(
    "--overwrite",
    is_flag=True,
    default=None,
    help="Replace another system's run in the output folder (its report and figures too).",
)
@run_options
def run(config_file, quiet, no_report, **opts) -> None:
    """Run the benchmark: embed, detect, score and write results for each system.

    Every path (plain, ``--shards``, ``--shard-size``, ``--executor slurm``) runs the same units
    (:mod:`fmb.executors.units`): embed shards, score each system from the cache, report.
    """
    from fmb.commands.execute import run_matrix

    fields = {k: opts.pop(k) for k in SYSTEM_FIELDS}
    output, xopts = fields["output"], opts
    reg, cfgs = _systems(config_file, check_dirs=xopts.get("executor", "local") == "local", **fields)
    reporter = _reporter(quiet)
    done = run_matrix(reg, cfgs, output, reporter, report=not no_report, **xopts)
    if done is not None:
        _print_results(done, reporter, report=not no_report)


@click.command("embed")
@click.option("--model", "models", multiple=True, required=True, help="Model name[:key=value,...].")
@_common
@embed_options
def embed(
    models, datasets, modality, weights, seeds, device, batch_size, precision, config_file, quiet, **xopts
) -> None:
    """Embed a dataset with a model into the embedding cache (stage 2 on its own)."""
    from fmb.commands.execute import embed_matrix
    from fmb.plugins import registry

    cfgs = _configs(
        config_file,
        models=models,
        detectors=["none"],
        datasets=datasets,
        modality=modality,
        weights=weights,
        seeds=seeds,
        device=device,
        batch_size=batch_size,
        precision=precision,
    )
    embed_matrix(registry(), cfgs, _reporter(quiet), **xopts)


@click.command("detect")
@click.option("--model", "models", multiple=True, required=True)
@click.option("--detector", "detectors", multiple=True, required=True)
@_common
@click.option("--output", default=None, type=click.Path(file_okay=False))
@click.option(
    "--overwrite",
    is_flag=True,
    default=None,
    help="Replace another system's run in the output folder (its report and figures too).",
)
@click.option("--report", is_flag=True, help="Write report.html in each run folder too.")
def detect(config_file, quiet, report, **fields) -> None:
    """Detect and score from cached embeddings only (stage 3; run `fmb embed` first). The model is never
    built: the cache key is the one `fmb embed` recorded for the same model, options, weights and seed."""
    from fmb.executors.units import ReportRuns, ScoreSystem

    output = fields["output"]
    reg, cfgs = _systems(config_file, check_dirs=True, **fields)
    reporter = _reporter(quiet)
    done = [
        (str(out_dir), ScoreSystem(cfg, out_dir).run(reg, reporter))
        for cfg, out_dir in zip(cfgs, _out_dirs(cfgs, output))
    ]
    if report:
        ReportRuns([d for d, _ in done]).run(reporter)
    if len(done) > 1:  # a matrix: its leaderboard at the root, as `fmb run` writes it
        from fmb.executors.plan import plan_dir
        from fmb.leaderboard import leaderboard, write_leaderboard

        write_leaderboard(leaderboard([d for d, _ in done]), plan_dir(cfgs, output))
    _print_results(done, reporter, report=report)
