"""``fmb status RUN``: progress of a run from its shard progress markers and from the scheduler."""

from __future__ import annotations

import json
from typing import Any

import click


def run_status(run_dir: str) -> dict[str, Any]:
    """Shards done per embedding unit, results per system, and the jobs of the latest submission. A folder
    without a run plan (a plain ``fmb run`` of one system, or a matrix folder written before plans were kept)
    reports its systems only; a plan without progress markers (a plain ``fmb run`` of a matrix) reports every
    system it was asked for. ``complete`` is True only when every planned system has valid results;
    ``missing`` names the others."""
    from pathlib import Path

    from fmb.errors import UsageError
    from fmb.executors import slurm
    from fmb.executors.plan import PLAN_FILE, RunPlan
    from fmb.runs import expand_run_dirs, is_run_dir, read_results

    if not (Path(run_dir) / PLAN_FILE).exists() and Path(run_dir).is_dir():
        systems = []
        dirs = (
            [Path(run_dir)]
            if is_run_dir(Path(run_dir))
            else [c for c in sorted(Path(run_dir).iterdir()) if c.is_dir() and c.name not in ("progress", "slurm")]
        )  # a matrix folder without a plan: an empty system folder is a system that never finished
        for d in dirs or expand_run_dirs(run_dir):
            try:
                read_results(d)
                done = True
            except UsageError:
                done = False
            systems.append({"system": d.name, "output": str(d), "done": done})
        return {
            "run": str(run_dir),
            "executor": "local",
            "submissions": 0,
            "complete": all(s["done"] for s in systems),
            "missing": [s["system"] for s in systems if not s["done"]],
            "embeddings": [],
            "systems": systems,
            "jobs": [],
        }
    plan = RunPlan.load(run_dir)
    units = (
        []
        if not plan.markers
        else [
            {
                "unit": u.id,
                "args": u.args,
                "n_shards": u.n_shards,
                "done": len(done := plan.done_shards(u)),
                "missing": [i for i in range(u.n_shards) if i not in set(done)],
            }
            for u in plan.embed
        ]
    )
    systems = [{"system": d.label, "output": d.out_dir, "done": plan.detect_done(d)} for d in plan.detect]
    jobs: list[dict[str, str]] = []
    ids = slurm.submitted_jobs(plan) if plan.executor == "slurm" else []
    if ids:
        queued = slurm.queue_states(ids)
        seen = {r["id"] for r in queued}
        jobs = _dedupe(queued + [r for r in slurm.finished_states(ids) if r["id"] not in seen])
    complete = all(u["done"] == u["n_shards"] for u in units) and all(s["done"] for s in systems)
    return {
        "run": str(plan.run_dir),
        "executor": plan.executor,
        "submissions": len(plan.submissions),
        "complete": complete,
        "missing": [s["system"] for s in systems if not s["done"]],
        "embeddings": units,
        "systems": systems,
        "jobs": jobs,
    }


def _dedupe(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, out = set(), []
    for r in rows:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


@click.command()
@click.argument("run", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(run: str, as_json: bool) -> None:
    """Progress of RUN (a run folder or a matrix folder): shards done, systems scored, and the Slurm jobs."""
    info = run_status(run)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        print_status(info)


def print_status(info: dict[str, Any]) -> None:
    """The status as a few readable lines."""
    state = "complete" if info["complete"] else "incomplete"
    if info.get("missing"):
        n = len(info["systems"])
        state += f": {len(info['missing'])} of {n} system(s) without valid results: {', '.join(info['missing'])}"
    click.echo(f"run {info['run']} ({info['executor']}, {info['submissions']} submission(s)): {state}")
    for u in info["embeddings"]:
        what = " ".join(u["args"][:4])
        missing = f"; missing {', '.join(map(str, u['missing']))}" if u["missing"] else ""
        click.echo(f"  embed  {what}: {u['done']}/{u['n_shards']} shard(s) done{missing}")
    for s in info["systems"]:
        what = "results written" if s["done"] else "no valid results (failed, refused, killed or not run yet)"
        click.echo(f"  detect {s['system']}: {what}")
    for j in info["jobs"]:
        reason = f" ({j['reason']})" if j.get("reason") not in (None, "", "None") else ""
        click.echo(f"  job    {j['id']}: {j['state']}{reason}")
