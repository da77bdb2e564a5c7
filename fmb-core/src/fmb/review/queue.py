"""One deduplicated review queue from the top candidates of every system (run folder x modality).

Each system's scores become percentiles ``p = rank_ascending(score) / N`` in (0, 1] (1 = most anomalous;
``fmb.detectors.fusion.percentiles``). The queue holds the union of every system's ``top`` best-ranked objects;
its plain order is the fused anomaly score, the mean of an object's percentiles over the systems that scored
it (rank averaging), highest first, ties by object id (so the order depends on neither the row order nor the
order of the run folders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmb.data import canonical as C
from fmb.detectors.fusion import percentiles
from fmb.errors import UsageError
from fmb.report.collect import Run, load_runs, systems
from fmb.report.gallery import top_ids

#: catalogue columns shown on a card (truth columns are never shown: the expert must not see the answer)
CATALOGUE_COLUMNS = tuple(c for c in C.LABEL_COLUMNS if c not in (C.IS_ANOMALY, C.ANOMALY_CLASS))


@dataclass
class Candidate:
    """One object in the queue."""

    object_id: str
    #: system label -> 1-based rank in that system
    ranks: dict[str, int]
    #: fused anomaly score in (0, 1] (mean percentile over the systems that scored it)
    fused: float
    #: 1-based position in the plain fused order
    anomaly_rank: int = 0
    #: catalogue values (redshift, ...) shown on the card
    catalogue: dict[str, object] = field(default_factory=dict)
    #: the data set's truth (anomaly class; "normal"), None when unlabelled; used by the simulated expert only
    truth: str | None = None


@dataclass
class ReviewQueue:
    """The candidates in plain fused order, the systems, and the data set's artefact classes."""

    runs: list[Run]
    systems: list[str]
    candidates: list[Candidate]
    artefact_classes: tuple[str, ...]
    top: int

    def index(self) -> dict[str, int]:
        """object id (text) -> position in ``candidates``."""
        return {c.object_id: i for i, c in enumerate(self.candidates)}


def _check_same_dataset(runs: list[Run]) -> None:
    fps = {(r.result.get("dataset") or {}).get("fingerprint") for r in runs}
    if len(fps) > 1:
        names = ", ".join(f"{r.path} ({str((r.result.get('dataset') or {}).get('fingerprint'))[:12]})" for r in runs)
        raise UsageError(f"review: the run folders are on different data sets (fingerprints differ): {names}")


def build_queue(run_dirs: list[str | Path], top: int = 100) -> ReviewQueue:
    """Merge the ``top`` best-ranked objects of every system of ``run_dirs`` (one data set) into one queue.

    Raises UsageError when a folder is not a run folder, when the runs are on different data sets, or when
    ``top`` < 1.
    """
    if top < 1:
        raise UsageError(f"review: --top must be at least 1, got {top}")
    if not run_dirs:
        raise UsageError("review: give at least one RUN_DIR")
    runs = load_runs(list(run_dirs))
    _check_same_dataset(runs)
    syst = systems(runs)
    if not any(len(rk.score) for _, _, rk in syst):
        raise UsageError("review: the runs hold no scored objects")
    scored = [(label, rk) for label, _run, rk in syst if len(rk.score)]
    wanted = {str(v): Candidate(str(v), {}, 0.0) for _, rk in scored for v in top_ids(rk, top)}
    sums: dict[str, list[float]] = {oid: [] for oid in wanted}
    for label, rk in scored:
        pct, cls = percentiles(rk.score), rk.classes
        for i, v in enumerate(rk.object_id.tolist()):
            c = wanted.get(str(v))
            if c is None:
                continue
            c.ranks[label] = int(rk.rank[i])
            sums[c.object_id].append(float(pct[i]))
            if not c.catalogue:
                c.catalogue = {k: _py(rk.labels[k][i]) for k in CATALOGUE_COLUMNS if k in rk.labels}
            if c.truth is None and cls is not None:
                c.truth = str(cls[i])
    for oid, c in wanted.items():
        c.fused = float(np.mean(sums[oid]))
    cands = sorted(wanted.values(), key=lambda c: (-c.fused, c.object_id))
    for n, c in enumerate(cands, 1):
        c.anomaly_rank = n
        c.ranks = dict(sorted(c.ranks.items(), key=lambda kv: kv[1]))
    artefacts = _artefact_classes(runs)
    return ReviewQueue(runs, [s[0] for s in syst], cands, artefacts, top)


def _py(v: object) -> object:
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and not np.isfinite(v) else v


def _artefact_classes(runs: list[Run]) -> tuple[str, ...]:
    """The data set's artefact classes, from results.json (runs made before it was recorded: the data set's)."""
    ds = runs[0].result.get("dataset") or {}
    if "artefact_classes" in ds:
        return tuple(ds["artefact_classes"])
    from fmb.report.embedmap import UnavailableError
    from fmb.report.gallery import open_run_dataset

    try:
        return tuple(open_run_dataset(runs[0]).artefact_classes)
    except UnavailableError:
        return ()
