"""Read run folders (results.json + scores.parquet) into systems = model x modality x detector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmb import runs
from fmb.compare.rankings import align as rank_align
from fmb.errors import UsageError
from fmb.params import format_spec


@dataclass
class System:
    """One ranking: a model's modality scored by a detector, from one run folder."""

    name: str
    run: str
    model: str
    modality: str
    detector: str
    seed: int
    object_id: np.ndarray
    score: np.ndarray


def read_run(path: str | Path) -> tuple[dict, list[System]]:
    """results.json and one System per modality of a run folder (objects with a finite score only)."""
    path = Path(path)
    result, table = runs.read_run(path, columns=["object_id", "modality", "score"])
    cfg = result.get("config", {})
    model = result.get("model", {}).get("name") or cfg.get("model", "?")
    det = format_spec(cfg.get("detector", "?"), cfg.get("detector_params") or {})
    ids = table.column("object_id").to_numpy(zero_copy_only=False)
    mods = table.column("modality").to_numpy(zero_copy_only=False).astype(str)
    scores = table.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    systems = []
    for m in dict.fromkeys(mods.tolist()):
        sel = (mods == m) & np.isfinite(scores)
        systems.append(
            System(f"{model}/{m}/{det}", str(path), model, m, det, int(cfg.get("seed", 0)), ids[sel], scores[sel])
        )
    return result, systems


def dataset_warning(paths: list[str | Path]) -> str | None:
    """A one-line warning when the run folders come from different data sets (their results.json
    ``dataset.fingerprint`` differ, or one is unknown), else None. Folder names are grouped per data set."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        ds = runs.read_results(p).get("dataset") or {}
        key = f"{ds.get('name', '?')} (fingerprint {str(ds.get('fingerprint') or 'unknown')[:12]})"
        groups.setdefault(key, []).append(Path(p).name)
    if len(groups) < 2:
        return None
    return (
        "these runs come from different data sets (fingerprints differ): "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())
        + "; they are compared on the object ids they share only"
    )


def load_systems(paths: list[str | Path], modality: str | None = None) -> list[System]:
    """Every system of every run folder (optionally one modality); duplicate names get the seed and
    then the folder name appended."""
    systems = [s for p in paths for s in read_run(p)[1] if modality in (None, s.modality)]
    for attr in ("seed", "run"):
        names = [s.name for s in systems]
        for s in systems:
            if names.count(s.name) > 1:
                s.name += f"/seed{s.seed}" if attr == "seed" else f" ({Path(s.run).name})"
    return systems


@dataclass
class Aligned:
    """Scores of every system on the objects common to all of them."""

    names: list[str]
    object_id: np.ndarray
    scores: np.ndarray  # [N common objects, M systems]
    dropped: dict[str, int]  # per system: objects not common to all


def align(systems: list[System]) -> Aligned:
    """Intersect the object sets; the statistics are computed on this aligned set only."""
    if len(systems) < 2:
        raise UsageError(
            f"compare: need at least 2 systems, got {len(systems)} "
            "(give several run folders, or one run with several modalities)"
        )
    try:
        common, scores = rank_align([s.object_id for s in systems], [s.score for s in systems])
    except ValueError as exc:
        raise UsageError(f"compare: {exc}") from exc
    if len(common) < 2:
        raise UsageError(
            f"compare: only {len(common)} object(s) are common to all {len(systems)} systems; "
            "need at least 2 (are these runs on the same data set?)"
        )
    return Aligned(
        [s.name for s in systems], common, scores, {s.name: int(len(s.object_id) - len(common)) for s in systems}
    )
