"""The run plan: the embedding units (one per model x dataset x settings, split into shards), the
detection units (one per system), and the progress markers that record finished shards.

Layout of a run folder: ``fmb-run.json`` (this plan and its submissions; every matrix folder has one, written
before any work, so that ``fmb status`` and ``fmb leaderboard`` know every system it was asked for), ``progress/<unit>/
shard-NNNNN.json`` (written by ``fmb embed --shard i/N --progress-dir ...`` once the shard is in the
cache), ``slurm/`` (generated scripts and logs), and the results of each system.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmb.errors import UsageError
from fmb.io import write_json
from fmb.params import format_spec
from fmb.plugins import Registry
from fmb.protocol.embed import DEFAULT_SHARD_SIZE, shard_path, shard_size_for
from fmb.protocol.run import RunConfig, open_dataset

PLAN_FILE = "fmb-run.json"
PLAN_VERSION = 1


@dataclass
class EmbedUnit:
    """One embedding (model x dataset x weights x seed x device x batch size), split into shards."""

    id: str
    #: the ``fmb embed`` arguments of this unit: only for sbatch scripts and ``fmb status``
    args: list[str]
    n_objects: int
    shard_size: int
    n_shards: int
    #: the embedding's RunConfig (detector ``none``) as a dict: what the local executor runs
    config: dict[str, Any] = field(default_factory=dict)

    def run_config(self) -> RunConfig:
        return RunConfig(**self.config)

    def shard_args(self, index: int | str, progress_dir: Path) -> list[str]:
        """``fmb embed`` arguments for one shard (``index`` may be a shell expression)."""
        return [
            *self.args,
            "--shard",
            f"{index}/{self.n_shards}",
            "--shard-size",
            str(self.shard_size),
            "--progress-dir",
            str(progress_dir),
            "--quiet",
        ]


@dataclass
class DetectUnit:
    """One system: ``fmb detect`` on the cached embeddings of ``unit``, results in ``out_dir``."""

    label: str
    unit: str
    args: list[str]
    out_dir: str
    config: dict[str, Any]
    #: replace another system's run in ``out_dir`` (not part of the recorded configuration)
    overwrite: bool = False

    def run_config(self) -> RunConfig:
        return RunConfig(**self.config, overwrite=self.overwrite)


@dataclass
class RunPlan:
    run_dir: Path
    executor: str
    embed: list[EmbedUnit]
    detect: list[DetectUnit]
    submissions: list[dict[str, Any]] = field(default_factory=list)
    #: whether shard progress markers are kept (``--shards``/``--shard-size``, Slurm); a plain ``fmb run`` of a
    #: matrix saves its plan only to record the systems it was asked for (:func:`missing_systems`)
    markers: bool = True

    # ---------------------------------------------------------------- files
    @property
    def path(self) -> Path:
        return self.run_dir / PLAN_FILE

    def progress_dir(self, unit: EmbedUnit) -> Path:
        return self.run_dir / "progress" / unit.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "executor": self.executor,
            "embed": [asdict(u) for u in self.embed],
            "detect": [asdict(d) for d in self.detect],
            "submissions": self.submissions,
            "markers": self.markers,
        }

    def save(self) -> None:
        write_json(self.to_dict(), self.path)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunPlan:
        run_dir = Path(run_dir)
        path = run_dir / PLAN_FILE if run_dir.is_dir() else run_dir
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{str(path)!r} is not a run plan (made by `fmb run --shards N` or "
                f"`--executor slurm`): {getattr(exc, 'strerror', None) or exc}"
            ) from exc
        return cls(
            path.parent,
            data["executor"],
            [EmbedUnit(**u) for u in data["embed"]],
            [DetectUnit(**d) for d in data["detect"]],
            data.get("submissions", []),
            bool(data.get("markers", True)),
        )

    # ---------------------------------------------------------------- progress
    def done_shards(self, unit: EmbedUnit) -> list[int]:
        """Shards whose progress marker points at a cache shard that is still there, unchanged."""
        return [i for i in range(unit.n_shards) if progress_ok(self.progress_dir(unit) / marker_name(i))]

    def missing_shards(self, unit: EmbedUnit) -> list[int]:
        done = set(self.done_shards(unit))
        return [i for i in range(unit.n_shards) if i not in done]

    def detect_done(self, d: DetectUnit) -> bool:
        """True when the system's run folder is complete (:func:`fmb.runs.read_results`) and was made
        with this configuration."""
        from fmb.runs import read_results

        try:
            result = read_results(d.out_dir)
        except UsageError:
            return False
        return result.get("config") == d.config


def missing_systems(run_dir: str | Path) -> list[str] | None:
    """The labels of the systems planned in ``run_dir`` (a folder with :data:`PLAN_FILE`) that have no valid
    results (failed, refused, never run, killed, or made with another configuration:
    :meth:`RunPlan.detect_done`), in plan order; ``None`` when ``run_dir`` holds no plan."""
    if not (Path(run_dir) / PLAN_FILE).is_file():
        return None
    plan = RunPlan.load(run_dir)
    return [d.label for d in plan.detect if not plan.detect_done(d)]


def marker_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def write_progress(progress_dir: str | Path, index: int, cache_path: Path, marker: dict[str, Any]) -> None:
    """Record that shard ``index`` is in the cache (called by ``fmb embed --progress-dir``)."""
    write_json({"index": index, "cache": str(cache_path), "marker": marker}, Path(progress_dir) / marker_name(index))


def progress_ok(path: Path) -> bool:
    """A progress marker is valid while its cache shard and done-marker still match it (cheap checks)."""
    try:
        rec = json.loads(path.read_text())
        cache, i, marker = Path(rec["cache"]), int(rec["index"]), rec["marker"]
        current = json.loads(shard_path(cache, i, ".json").read_text())
        shard = shard_path(cache, i)
        return (
            bool(marker["hash"]) and current.get("hash") == marker["hash"] and shard.stat().st_size == marker["bytes"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _absolute_weights(weights: str) -> str:
    """A weights path relative to here becomes absolute (jobs may start elsewhere)."""
    if weights not in ("auto", "random", "none") and not weights.startswith("hf:") and Path(weights).exists():
        return str(Path(weights).resolve())
    return weights


def out_dirs(cfgs: list[RunConfig], output: str | None) -> list[Path]:
    """The run folder of each system: ``output`` for one system, else ``output/<label>`` (default
    ``fmb-results``)."""
    root = output or (cfgs[0].output if cfgs and cfgs[0].output else "")
    if len(cfgs) == 1 and root:
        return [Path(root)]
    base = Path(root or "fmb-results")
    return [base / c.label for c in cfgs]


def plan_dir(cfgs: list[RunConfig], output: str | None) -> Path:
    """Where a run's plan lives: the run folder of a single system, else the matrix's folder."""
    return out_dirs(cfgs, output)[0] if len(cfgs) == 1 else Path(output or "fmb-results")


def build_plan(
    reg: Registry,
    cfgs: list[RunConfig],
    out_dirs: list[Path],
    run_dir: Path,
    executor: str,
    shards: int | None = None,
    shard_size: int | None = None,
    report: bool = False,
) -> RunPlan:
    """Resolve the units of a benchmark matrix (opens each data set to count its objects, and checks
    its ids). ``report``: the scoring units write report.html too (``fmb detect --report``)."""
    if shards is not None and shard_size is not None:
        raise UsageError("give --shards or --shard-size, not both")
    if shard_size is not None and shard_size < 1:
        raise UsageError(f"--shard-size must be positive, got {shard_size}")
    units: dict[str, EmbedUnit] = {}
    detects: list[DetectUnit] = []
    sizes: dict[str, int] = {}
    for cfg, out in zip(cfgs, out_dirs):
        weights = _absolute_weights(cfg.weights)
        args = [
            "--model",
            format_spec(cfg.model, cfg.model_options),
            "--dataset",
            format_spec(cfg.dataset, cfg.dataset_options),
            "--weights",
            weights,
            "--seed",
            str(cfg.seed),
            "--device",
            cfg.device,
            "--batch-size",
            str(cfg.batch_size),
            *(["--precision", cfg.precision] if cfg.precision != "fp32" else []),
        ]
        uid = hashlib.sha256(json.dumps(args).encode()).hexdigest()[:12]
        if uid not in units:
            ds_key = format_spec(cfg.dataset, cfg.dataset_options)
            if ds_key not in sizes:
                sizes[ds_key] = len(open_dataset(reg, cfg.dataset, cfg.dataset_options))
            n = sizes[ds_key]
            size = shard_size or (shard_size_for(n, shards) if shards else DEFAULT_SHARD_SIZE)
            embed_cfg = {**cfg.to_dict(), "detector": "none", "detector_params": {}, "weights": weights}
            units[uid] = EmbedUnit(uid, args, n, size, max(1, -(-n // size)), embed_cfg)
        out_abs = out.resolve()
        detect_args = [
            *args,
            "--detector",
            format_spec(cfg.detector, cfg.detector_params),
            "--modality",
            cfg.modality,
            "--output",
            str(out_abs),
            "--quiet",
            *(["--report"] * report),
            *(["--overwrite"] * cfg.overwrite),
        ]
        config = {**cfg.to_dict(), "output": str(out_abs), "weights": weights}
        detects.append(DetectUnit(cfg.label, uid, detect_args, str(out_abs), config, cfg.overwrite))
    return RunPlan(run_dir.resolve(), executor, list(units.values()), detects)
