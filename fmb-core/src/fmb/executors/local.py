"""The local executor: the same units as on Slurm (embed shards, score each system, report), run here
as objects (:mod:`fmb.executors.units`); plain ``fmb run`` is this executor with one shard layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmb.executors.plan import RunPlan
from fmb.executors.units import EmbedShards, ReportRuns, ScoreSystem
from fmb.plugins import Registry
from fmb.reporting import Reporter


def run_local(
    reg: Registry, plan: RunPlan, reporter: Reporter, workers: int = 1, report: bool = False, persist: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """Embed the missing shards of every embedding unit, then score every system (from the cache, without
    building a model), then (``report``) write each run folder's report.html; returns the results.

    ``persist`` saves the plan and the shard progress markers in the run folder (``fmb run --shards``,
    for ``fmb status`` and resuming); plain ``fmb run`` of one system leaves only its results there, and of a
    matrix also the plan (without progress markers), so that ``fmb status`` and ``fmb leaderboard`` know
    every system asked for, also when one fails.
    """
    from fmb.protocol.environment import utc_now

    started = utc_now()
    if persist:
        plan.save()
    elif len(plan.detect) > 1:  # a matrix folder records the systems asked for, before any work (fmb status)
        plan.markers = False
        plan.save()
    if len(plan.detect) > 1:  # an earlier run's table must not outlive it: written again once this one is done
        from fmb.leaderboard import CSV, PARQUET

        for name in (CSV, PARQUET):
            (plan.run_dir / name).unlink(missing_ok=True)
    embedded: dict[str, Any] = {}
    for unit in plan.embed:
        missing = plan.missing_shards(unit) if persist else list(range(unit.n_shards))
        if missing:
            embedded[unit.id] = EmbedShards(
                unit.run_config(), missing, unit.n_shards, unit.shard_size, plan.progress_dir(unit) if persist else None
            ).run(reg, reporter, workers)
    done = [
        (d.out_dir, ScoreSystem(d.run_config(), Path(d.out_dir), embedded.get(d.unit), started).run(reg, reporter))
        for d in plan.detect
    ]
    if report:
        ReportRuns([d for d, _ in done]).run(reporter)
    return done
