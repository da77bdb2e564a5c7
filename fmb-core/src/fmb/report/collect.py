"""Load run folders (results.json + scores.parquet) into per-modality score arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmb.data import canonical as C
from fmb.protocol.nuisance import VARIABLES as NUISANCE
from fmb.runs import read_run


@dataclass
class Ranking:
    """The scores of one modality of one run (objects with a finite score only).

    ``labels[is_anomaly]`` and ``labels[anomaly_class]`` are resolved once by
    :func:`fmb.data.canonical.resolve_labels`: a null ``is_anomaly`` is unlabelled (``labelled`` False, class
    ``"unlabelled"``), a flagged object without a class is ``"unknown"``, never normal.
    """

    modality: str
    object_id: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    labelled: np.ndarray | None = None
    #: per-object nuisance variables from scores.parquet (``spectrum_snr``, ``image_flux``; NaN where missing),
    #: :mod:`fmb.protocol.nuisance`; empty for runs written before they were stored
    nuisance: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        return C.IS_ANOMALY in self.labels and self.labelled is not None and bool(self.labelled.any())

    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """``(is_anomaly [M] bool, score [M])`` of the M labelled objects: what every figure of truth uses."""
        keep = self.labelled if self.labelled is not None else np.ones(len(self.score), bool)
        return self.labels[C.IS_ANOMALY][keep].astype(bool), self.score[keep]

    @property
    def classes(self) -> np.ndarray | None:
        """Anomaly class per object ("anomaly"/"normal" when only is_anomaly is known)."""
        if C.ANOMALY_CLASS in self.labels:
            return self.labels[C.ANOMALY_CLASS].astype(str)
        if self.has_labels:
            return np.where(
                self.labelled,
                np.where(self.labels[C.IS_ANOMALY].astype(bool), "anomaly", C.NORMAL_CLASS),
                C.UNLABELLED_CLASS,
            )
        return None


@dataclass
class Run:
    """One run folder."""

    path: Path
    result: dict[str, Any]
    rankings: list[Ranking]
    name: str = ""

    @property
    def has_labels(self) -> bool:
        return any(r.has_labels for r in self.rankings)

    @property
    def title(self) -> str:
        cfg, ds = self.result.get("config", {}), self.result.get("dataset", {})
        return f"{cfg.get('model', '?')} × {cfg.get('detector', '?')} on {ds.get('name', '?')}"


def load_run(path: str | Path) -> Run:
    """Read a complete run folder (:func:`fmb.runs.read_run`); a one-line UsageError when it is not one."""
    path = Path(path)
    result, table = read_run(path)
    cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    mods = cols["modality"].astype(str)
    score = cols["score"].astype(np.float64)
    rankings = []
    for m in dict.fromkeys(mods.tolist()):
        sel = (mods == m) & np.isfinite(score)
        labels = {c: cols[c][sel] for c in C.LABEL_COLUMNS if c in cols}
        labelled = None
        if C.IS_ANOMALY in labels:
            labelled, y, cls = C.resolve_labels(labels[C.IS_ANOMALY], labels.get(C.ANOMALY_CLASS))
            labels[C.IS_ANOMALY] = y
            if cls is not None:
                labels[C.ANOMALY_CLASS] = np.where(labelled, cls, C.UNLABELLED_CLASS).astype(str)
        rank = np.asarray(cols["rank"][sel], dtype=np.float64).astype(np.int64)
        nuisance = {
            v: np.array([np.nan if x is None else x for x in cols[v][sel]], dtype=np.float64)
            for v in NUISANCE
            if v in cols
        }
        rankings.append(Ranking(m, cols["object_id"][sel], score[sel], rank, labels, labelled, nuisance))
    return Run(path, result, rankings, name=path.name)


def short_names(names: list[str]) -> list[str]:
    """Folder names without the "__"-separated parts they all share ("baseline__knn__toy__seed0" -> "knn")."""
    parts = [n.split("__") for n in names]
    if len(names) < 2 or len({len(p) for p in parts}) != 1:
        return names
    keep = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return ["__".join(p[i] for i in keep) or n for p, n in zip(parts, names)]


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Every run, named by what tells the folders apart (unique: the parent folder is added if needed)."""
    runs = [load_run(p) for p in paths]
    for r, name in zip(runs, short_names([r.name for r in runs])):
        r.name = name
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    return runs


def systems(runs: list[Run]) -> list[tuple[str, Run, Ranking]]:
    """(label, run, ranking) per system = run folder x modality."""
    one = len(runs) == 1
    return [(rk.modality if one else f"{run.name}: {rk.modality}", run, rk) for run in runs for rk in run.rankings]
