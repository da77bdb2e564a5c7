"""Nearest neighbours by cosine in one embedding space, joined with the run's anomaly ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.detectors.neighbours import cosine_to
from fmb.errors import UsageError
from fmb.params import parse_value
from fmb.runs import read_run


def cosine_neighbours(X: np.ndarray, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the k rows most similar to row i (itself and non-finite rows excluded; ties
    by row order). An exact scan in blocks (:func:`fmb.detectors.neighbours.cosine_to`: one query, so no index)."""
    q = np.asarray(X[i], np.float64)
    if not np.isfinite(q).all() or not np.any(q):
        raise UsageError(f"neighbors: object at row {i} has no usable embedding in this space")
    sim = cosine_to(X, q)
    sim[i] = -np.inf
    order = np.argsort(-sim, kind="stable")[:k]
    order = order[np.isfinite(sim[order])]
    return order, sim[order]


def neighbours(
    table: pa.Table, run_dir: str | Path, object_id: str, modality: str | None, k: int, run_modalities: list[str]
) -> tuple[list[dict[str, Any]], str]:
    """Rows (query first): object_id, cosine, the rank in the run's scores of that space and rank/N
    (``top_fraction``, small = anomalous)."""
    if k < 1:
        raise UsageError(f"neighbors: -k must be positive, got {k}")
    outputs = [o for o in ("image", "spectrum", "joint") if o in table.column_names]
    space = modality or next((m for m in run_modalities if m in outputs), outputs[0] if outputs else None)
    if space not in outputs:
        raise UsageError(f"neighbors: no {space!r} embedding in this run (available: {', '.join(outputs)})")
    ids = table.column(C.OBJECT_ID).to_pylist()
    want = parse_value(object_id) if not isinstance(ids[0], str) else object_id
    try:
        i = ids.index(want)
    except ValueError:
        raise UsageError(f"neighbors: object {object_id!r} is not in this run's data set") from None
    idx, sim = cosine_neighbours(C.column_array(table, space), i, k)
    scores = read_run(run_dir, columns=["object_id", "modality", "rank"])[1]
    mods = scores.column("modality").to_numpy(zero_copy_only=False).astype(str)
    rank_mod = space if space in set(mods) else (run_modalities[0] if run_modalities else None)
    sel = mods == rank_mod
    rank_of = dict(
        zip(
            scores.column("object_id").filter(pa.array(sel)).to_pylist(),
            scores.column("rank").filter(pa.array(sel)).to_pylist(),
        )
    )
    n = sum(r is not None for r in rank_of.values())
    labels = [c for c in (C.ANOMALY_CLASS, "redshift") if c in table.column_names]
    rows = []
    for j, s in [(i, 1.0), *zip(idx.tolist(), sim.tolist())]:
        r = rank_of.get(ids[j])
        rows.append(
            {
                "object_id": ids[j],
                "cosine": float(s),
                f"rank ({rank_mod})": r,
                "top_fraction": None if r is None else r / n,
                **{c: table.column(c)[j].as_py() for c in labels},
                "query": j == i,
            }
        )
    return rows, space
