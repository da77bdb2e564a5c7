"""The executor side of ``fmb run`` and ``fmb embed``: their options, and the code behind them
(:func:`run_matrix`, :func:`embed_matrix`). Only click is imported at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fmb.errors import UsageError


def _workers_option(f: Callable) -> Callable:
    return click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=None,
        help="Threads preparing dataset batches while the model embeds (0: inline; default 1).",
    )(f)


def run_options(f: Callable) -> Callable:
    """``--executor``, sharding and Slurm options of ``fmb run``."""
    opts = [
        click.option(
            "--executor",
            type=click.Choice(["local", "slurm"]),
            default="local",
            show_default=True,
            help="Run here, or submit to Slurm (an embedding array job + a dependent detection job).",
        ),
        click.option("--shards", type=click.IntRange(min=1), default=None, help="Split each embedding into N shards."),
        click.option("--shard-size", type=click.IntRange(min=1), default=None, help="Or: objects per shard."),
        _workers_option,
        click.option(
            "--slurm-profile",
            type=click.Path(dir_okay=False, exists=True),
            default=None,
            help="TOML file with a [slurm] table (see docs/slurm.md); flags override it.",
        ),
        click.option("--partition", default=None, help="Slurm partition."),
        click.option("--account", default=None, help="Slurm account."),
        click.option("--gpus-per-task", default=None, help="GPUs per embedding task."),
        click.option("--cpus-per-task", default=None, help="CPUs per task."),
        click.option("--time", "time_limit", default=None, help="Time limit per task (e.g. 02:00:00)."),
        click.option("--mem", default=None, help="Memory per task (e.g. 16G)."),
        click.option(
            "--array-parallelism",
            type=click.IntRange(min=1),
            default=None,
            help="At most this many embedding tasks at once (%N).",
        ),
        click.option("--wait", is_flag=True, help="Slurm: block until the jobs finish, then show the status."),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Slurm: write the sbatch scripts into the run folder and print them, submitting nothing.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def embed_options(f: Callable) -> Callable:
    """``--shard I/N``, ``--shard-size``, ``--workers`` of ``fmb embed``."""
    opts = [
        click.option("--shard", default=None, help="Embed only shard I of N (0-based), e.g. 0/4."),
        click.option(
            "--shard-size",
            type=click.IntRange(min=1),
            default=None,
            help="Objects per shard (default: the cache's, or N from --shard).",
        ),
        _workers_option,
        click.option(
            "--progress-dir",
            type=click.Path(file_okay=False),
            default=None,
            hidden=True,
            help="Run folder progress directory (set by the executors).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def run_matrix(
    reg: Any,
    cfgs: list,
    output: str | None,
    reporter: Any,
    report: bool = True,
    executor: str = "local",
    shards: int | None = None,
    shard_size: int | None = None,
    workers: int | None = None,
    slurm_profile: str | None = None,
    array_parallelism: int | None = None,
    wait: bool = False,
    dry_run: bool = False,
    **slurm: Any,
) -> list[tuple[str, dict[str, Any]]] | None:
    """Run ``cfgs`` (already checked) through an executor: the local one (plain ``fmb run`` is one shard
    layout of it; ``--shards``/``--shard-size`` keep a plan and progress markers in the run folder) or
    Slurm. Returns the results of a local run (``None`` for Slurm, whose jobs write them)."""
    from fmb.executors.plan import PLAN_FILE, RunPlan, build_plan, out_dirs, plan_dir

    dirs = out_dirs(cfgs, output)
    run_dir = plan_dir(cfgs, output)
    plan = build_plan(reg, cfgs, dirs, run_dir, executor, shards, shard_size, report=report)
    if executor == "local":
        if dry_run:
            raise UsageError("--dry-run needs --executor slurm (it writes the sbatch scripts without submitting them)")
        from fmb.executors.local import run_local

        persist = shards is not None or shard_size is not None
        done = run_local(reg, plan, reporter, 1 if workers is None else workers, report=report, persist=persist)
        if len(done) > 1:  # a matrix: its leaderboard at the root
            from fmb.leaderboard import leaderboard, write_leaderboard

            write_leaderboard(leaderboard([d for d, _ in done]), run_dir)
        return done
    from fmb.commands.status import print_status, run_status
    from fmb.executors import slurm as S

    options = S.SlurmOptions.from_profile(
        slurm_profile,
        array_parallelism=array_parallelism,
        partition=slurm.get("partition"),
        account=slurm.get("account"),
        gpus_per_task=slurm.get("gpus_per_task"),
        cpus_per_task=slurm.get("cpus_per_task"),
        time=slurm.get("time_limit"),
        mem=slurm.get("mem"),
    )
    previous = RunPlan.load(run_dir) if (run_dir / PLAN_FILE).exists() else None
    if dry_run:
        if wait:
            raise UsageError("--dry-run submits nothing, so there is nothing to --wait for")
        record = S.submit(plan, options, previous, workers=workers, dry_run=True)
        for cmd in record["commands"]:
            click.echo(f"would run: {' '.join(cmd)}")
        scripts = [cmd[-1] for cmd in record["commands"]]
        click.echo(f"dry run: {len(scripts)} script(s) written, nothing submitted" if scripts else "nothing to submit")
        for path in scripts:
            click.echo(path)
        return None
    record = S.submit(plan, options, previous, workers=workers)
    for uid, e in record["embed"].items():
        click.echo(f"submitted embedding {uid}: job {e['job']}, array {S.array_spec(e['tasks'])}")
    if record["detect"]:
        click.echo(f"submitted detection: job {record['detect']} ({len(record.get('systems', []))} system(s))")
    if record.get("analysis"):
        click.echo(f"submitted analysis: job {record['analysis']}")
    if not record["embed"] and not record["detect"]:
        click.echo("nothing to submit: every shard and system is done")
    click.echo(f"follow it with: fmb status {plan.run_dir}")
    if wait:
        S.wait(plan)
        info = run_status(str(plan.run_dir))
        print_status(info)
        if not info["complete"]:
            raise click.exceptions.Exit(1)
    return None


def embed_matrix(
    reg: Any,
    cfgs: list,
    reporter: Any,
    shard: str | None = None,
    shard_size: int | None = None,
    workers: int | None = None,
    progress_dir: str | None = None,
) -> None:
    """``fmb embed``: every shard (``--shard-size S``: that layout; else the cache's), or only shard
    ``I/N`` (``--shard``; a Slurm array task), as :class:`~fmb.executors.units.EmbedShards` units."""
    from fmb.executors.units import EmbedShards
    from fmb.protocol.embed import embed_dataset, parse_shard
    from fmb.protocol.environment import resolve_device
    from fmb.protocol.run import load_model, open_dataset

    if progress_dir and shard is None:
        raise click.UsageError("--progress-dir needs --shard")
    workers = 1 if workers is None else workers
    for cfg in cfgs:
        if shard is not None:
            index, count = parse_shard(shard)
            unit = EmbedShards(cfg, [index], count, shard_size, Path(progress_dir) if progress_dir else None)
            res = unit.run(reg, reporter, workers)[0]
            if res.marker is None:
                click.echo(f"{cfg.model} x {cfg.dataset}: shard {index}/{count} is empty (only {res.rows[0]} objects)")
            else:
                state = "built" if res.built else "reused"
                click.echo(
                    f"{cfg.model} x {cfg.dataset}: shard {index}/{count} rows {res.rows[0]}-{res.rows[1]}: "
                    f"{state}: {res.path}"
                )
            continue
        dataset = open_dataset(reg, cfg.dataset, cfg.dataset_options)
        model = load_model(reg, cfg, resolve_device(cfg.device))
        with reporter.progress(f"embed {cfg.model} on {dataset.name}", total=len(dataset)) as advance:
            full = embed_dataset(
                model,
                dataset,
                batch_size=cfg.batch_size,
                shard_size=shard_size,
                progress=advance,
                notice=reporter.warn,
                workers=workers,
                precision=cfg.precision,
            )
        state = "reused" if full.reused else f"built {full.built_shards} shard(s)"
        click.echo(f"{cfg.model} x {dataset.name}: {state}: {full.path}")
