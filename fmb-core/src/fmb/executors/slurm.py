"""The Slurm executor: one array job per embedding unit (task i runs ``fmb embed --shard i/N``) and one
dependent job (``afterok``) that runs ``fmb detect`` for every system.

Resubmitting a run submits only the shards without a valid progress marker (missing or failed ones)
and the systems without results. Scripts are rendered from the templates in ``sbatch/<stage>/``
(``{{name}}`` placeholders); options come from a TOML profile (``--slurm-profile``) and flags.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fmb.errors import UsageError
from fmb.executors.plan import RunPlan
from fmb.home import fmb_home

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
STAGES = ("embed", "detect", "analysis")
OPTION_KEYS = ("partition", "account", "gpus_per_task", "cpus_per_task", "time", "mem", "qos")


@dataclass
class SlurmOptions:
    """sbatch settings per stage: ``[slurm]`` in the profile, then ``[slurm.embed]`` or
    ``[slurm.detect]``, then command-line flags (which win)."""

    common: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    array_parallelism: int | None = None

    @classmethod
    def from_profile(cls, path: str | None, **flags: Any) -> SlurmOptions:
        data: dict[str, Any] = {}
        if path:
            from fmb.config import tomllib

            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh).get("slurm", {})
            except OSError as exc:
                raise UsageError(f"slurm profile {path!r}: cannot read: {exc.strerror or exc}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise UsageError(f"slurm profile {path!r}: invalid TOML: {exc}") from exc
        allowed = {*OPTION_KEYS, "extra", "setup", "array_parallelism", *STAGES}
        if bad := set(data) - allowed:
            raise UsageError(
                f"slurm profile {path!r}: unknown key(s) {', '.join(sorted(bad))} "
                f"(expected {', '.join(sorted(allowed))})"
            )
        stages = {s: dict(data.get(s, {})) for s in STAGES}
        common = {k: v for k, v in data.items() if k not in STAGES}
        parallel = flags.pop("array_parallelism", None) or common.pop("array_parallelism", None)
        for key, value in flags.items():
            if value is not None:
                common[key] = value
                for s in stages.values():
                    s.pop(key, None)
        return cls(common, stages, int(parallel) if parallel else None)

    def get(self, stage: str) -> dict[str, Any]:
        merged = {**self.common, **self.stages.get(stage, {})}
        if stage != "embed" and "gpus_per_task" not in self.stages.get(stage, {}):
            merged.pop("gpus_per_task", None)  # detection runs on CPUs unless the profile says otherwise
        return merged

    def sbatch_lines(self, stage: str) -> str:
        opts = self.get(stage)
        lines = [f"#SBATCH --{k.replace('_', '-')}={opts[k]}" for k in OPTION_KEYS if opts.get(k) not in (None, "")]
        lines += [f"#SBATCH {x}" for x in _as_list(opts.get("extra"))]
        return "\n".join(lines)

    def setup(self, stage: str) -> str:
        return "\n".join(_as_list(self.get(stage).get("setup")))


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


# ------------------------------------------------------------------ templates


def template_root() -> Path:
    return Path(str(resources.files("fmb.executors") / "sbatch"))


def template_names() -> list[str]:
    root = template_root()
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.sbatch"))


def render_template(name: str, **values: Any) -> str:
    """Fill ``{{name}}`` placeholders; a placeholder without a value is an error."""
    text = (template_root() / name).read_text()
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise UsageError(f"template {name}: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def fmb_command() -> str:
    """How jobs call fmb: this Python, so a job finds the same installation."""
    return f"{shlex.quote(sys.executable)} -m fmb.cli"


def _q(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def array_spec(indices: list[int], parallel: int | None = None) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (``%P`` appended to limit concurrent tasks)."""
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ",".join(parts) + (f"%{parallel}" if parallel else "")


# ------------------------------------------------------------------ scheduler


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise UsageError(f"{cmd[0]}: not found (is this a Slurm login node? see docs/slurm.md)") from exc
    if check and proc.returncode != 0:
        raise UsageError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return proc


def sbatch(script: Path, *options: str) -> str:
    """Submit ``script``; returns the job id."""
    out = _run(["sbatch", "--parsable", *options, str(script)]).stdout.strip()
    return out.split(";")[0]


def queue_states(job_ids: list[str]) -> list[dict[str, str]]:
    """Queued or running jobs (array tasks one by one) among ``job_ids``: id, task, state, reason."""
    if not job_ids:
        return []
    proc = _run(["squeue", "-h", "-r", "-o", "%F|%K|%i|%T|%r"], check=False)
    if proc.returncode != 0:
        return []
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5 and parts[0] in job_ids:
            rows.append(
                {
                    "job": parts[0],
                    "task": parts[1] if parts[1] not in ("N/A", "") else "",
                    "id": parts[2],
                    "state": parts[3],
                    "reason": parts[4],
                }
            )
    return rows


def finished_states(job_ids: list[str]) -> list[dict[str, str]]:
    """States of jobs the controller still remembers (scontrol), else from accounting (sacct)."""
    rows: list[dict[str, str]] = []
    for job in job_ids:
        proc = _run(["scontrol", "-o", "show", "job", job], check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            for line in proc.stdout.splitlines():
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                task = f.get("ArrayTaskId", "")
                rows.append(
                    {
                        "job": job,
                        "task": task,
                        "id": f"{job}_{task}" if task else f.get("JobId", ""),
                        "state": f.get("JobState", ""),
                        "reason": f.get("Reason", ""),
                        "exit": f.get("ExitCode", ""),
                    }
                )
            continue
        proc = _run(["sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State,ExitCode"], check=False)
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            jid, state, code = [*line.split("|"), "", "", ""][:3]
            task = jid.split("_", 1)[1] if "_" in jid else ""
            rows.append({"job": job, "task": task, "id": jid, "state": state, "reason": "", "exit": code})
    return rows


def cluster_reachable() -> bool:
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def submitted_jobs(plan: RunPlan) -> list[str]:
    """Job ids of the latest submission."""
    if not plan.submissions:
        return []
    last = plan.submissions[-1]
    return [
        *(e["job"] for e in last.get("embed", {}).values()),
        *(last[k] for k in ("detect", "analysis") if last.get(k)),
    ]


# ------------------------------------------------------------------ submit


def _stuck(row: dict[str, str]) -> bool:
    return row["state"] == "PENDING" and "DependencyNeverSatisfied" in row["reason"]


def _clear_previous(plan: RunPlan) -> None:
    """Refuse while an earlier submission still runs; cancel its jobs that can never start."""
    active = queue_states(submitted_jobs(plan))
    stuck = [r for r in active if _stuck(r)]
    if len(stuck) < len(active):
        busy = ", ".join(sorted({r["id"] for r in active if r not in stuck}))
        raise UsageError(
            f"run {plan.run_dir} still has jobs in the queue ({busy}): wait for them "
            f"(`fmb status {plan.run_dir}`) or scancel them, then submit again"
        )
    for r in stuck:
        _run(["scancel", r["job"]], check=False)


class _DryRun:
    """Stands in for :func:`sbatch` in ``--dry-run``: records the command that would be run and returns a
    placeholder job id (``<detect>``), so the dependent jobs' ``--dependency`` options still read right."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, script: Path, *options: str) -> str:
        self.commands.append(["sbatch", "--parsable", *options, str(script)])
        return f"<{script.stem}>"


def submit(
    plan: RunPlan,
    options: SlurmOptions,
    previous: RunPlan | None = None,
    workers: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Write the scripts and submit what is missing; returns the submission record (also saved in the plan).

    ``dry_run``: write the scripts (``<run>/slurm/*.sbatch``) but call no Slurm command (no sbatch, no
    squeue) and record no submission; the record then has ``dry_run: True``, placeholder job ids and
    ``commands`` (the sbatch command lines that would be run, in order)."""
    dry = _DryRun() if dry_run else None
    submit_job = dry or sbatch
    if previous is not None:
        if not dry_run:
            _clear_previous(previous)
        plan.submissions = previous.submissions
    slurm_dir = plan.run_dir / "slurm"
    log_dir = slurm_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "log_dir": shlex.quote(str(log_dir)),
        "fmb_home": shlex.quote(str(fmb_home().resolve())),
        "workdir": shlex.quote(os.getcwd()),
        "fmb": fmb_command(),
    }
    record: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "embed": {}, "detect": None}
    if not dry_run:
        plan.save()  # the jobs need nothing from it, but `fmb status` does
    embed_jobs = []
    for unit in plan.embed:
        missing = plan.missing_shards(unit)
        if not missing:
            continue
        script = slurm_dir / f"embed-{unit.id}.sbatch"
        args = [*unit.args, *(["--workers", str(workers)] if workers is not None else [])]
        script.write_text(
            render_template(
                "02_embeddings/embed.sbatch",
                job_name=f"fmb-embed-{unit.id}",
                sbatch_lines=options.sbatch_lines("embed"),
                setup=options.setup("embed"),
                embed_args=_q(args),
                n_shards=unit.n_shards,
                shard_size=unit.shard_size,
                progress_dir=shlex.quote(str(plan.progress_dir(unit))),
                **common,
            )
        )
        job = submit_job(script, f"--array={array_spec(missing, options.array_parallelism)}")
        record["embed"][unit.id] = {"job": job, "tasks": missing}
        embed_jobs.append(job)
    todo = [d for d in plan.detect if d.unit in record["embed"] or not plan.detect_done(d)]
    if todo:
        fmb = common["fmb"]
        commands = "\n".join(f"{fmb} detect {_q(d.args)}" for d in todo)
        script = slurm_dir / "detect.sbatch"
        script.write_text(
            render_template(
                "03_detection/detect.sbatch",
                job_name="fmb-detect",
                sbatch_lines=options.sbatch_lines("detect"),
                setup=options.setup("detect"),
                commands=commands,
                **common,
            )
        )
        deps = [f"--dependency=afterok:{':'.join(embed_jobs)}"] if embed_jobs else []
        record["detect"] = submit_job(script, *deps)
        record["systems"] = [d.label for d in todo]
        record["analysis"] = _submit_analysis(plan, options, common, record["detect"], submit_job)
    if dry is not None:
        record.update(dry_run=True, commands=dry.commands)
        return record
    if record["embed"] or record["detect"]:
        plan.submissions.append(record)
    plan.save()
    return record


def _submit_analysis(
    plan: RunPlan, options: SlurmOptions, common: dict[str, str], after: str, submit_job: Any = None
) -> str | None:
    """Stage 4: ``fmb compare`` of the systems once they are scored (for 2+ systems), then their
    leaderboard at the matrix's root (``fmb leaderboard``)."""
    if len(plan.detect) < 2:
        return None
    script = plan.run_dir / "slurm" / "analysis.sbatch"
    args = [*(d.out_dir for d in plan.detect), "--out", str(plan.run_dir / "compare")]
    script.write_text(
        render_template(
            "04_analysis/analysis.sbatch",
            job_name="fmb-analysis",
            sbatch_lines=options.sbatch_lines("analysis"),
            setup=options.setup("analysis"),
            command="compare",
            args=_q(args)
            + f" && {common['fmb']} leaderboard "
            + _q([*(d.out_dir for d in plan.detect), "--out", str(plan.run_dir)]),
            **common,
        )
    )
    return (submit_job or sbatch)(script, f"--dependency=afterok:{after}")


#: ``--wait`` polling: first delay (s), growth factor per poll, longest delay (s)
POLL_START, POLL_FACTOR, POLL_CAP = 3.0, 1.5, 60.0


def poll_delays(start: float = POLL_START, factor: float = POLL_FACTOR, cap: float = POLL_CAP) -> Iterator[float]:
    """Seconds to sleep before each successive poll: ``start``, then times ``factor`` each poll, never over
    ``cap`` (3, 4.5, 6.75, ... 60, 60, ...): quick feedback for short jobs, at most one squeue a minute for
    long ones. ValueError for ``start`` <= 0, ``factor`` < 1 or ``cap`` < ``start``."""
    if not (start > 0 and factor >= 1 and cap >= start):
        raise ValueError(f"poll delays need start > 0, factor >= 1, cap >= start (got {start}, {factor}, {cap})")
    delay = start
    while True:
        yield delay
        delay = min(delay * factor, cap)


def wait(
    plan: RunPlan, timeout: float | None = None, delays: Iterable[float] | None = None, sleep: Any = time.sleep
) -> None:
    """Block until no job of the latest submission is queued or running, or every one left can never
    start (pending on a failed dependency; a resubmission cancels those).

    Each poll is one batched ``squeue`` for all the jobs (:func:`queue_states`); between polls it sleeps
    :func:`poll_delays` (or ``delays``). ``timeout`` (s): a one-line UsageError when jobs still run after it."""
    jobs = submitted_jobs(plan)
    t0 = time.monotonic()
    steps = iter(poll_delays() if delays is None else delays)
    while any(not _stuck(r) for r in queue_states(jobs)):
        elapsed = time.monotonic() - t0
        if timeout is not None and elapsed > timeout:
            raise UsageError(f"jobs {', '.join(jobs)} still running after {timeout:.0f} s")
        step = next(steps)
        sleep(step if timeout is None else max(min(step, timeout - elapsed), 0.0))
