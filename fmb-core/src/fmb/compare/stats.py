"""Pairwise statistics of ``fmb compare`` (built on :mod:`fmb.compare.rankings`), bootstrap intervals
and disagreement sets.

Scores are "higher = more anomalous"; rank 1 is the most anomalous object (tied objects share the
best rank, as in :func:`fmb.protocol.metrics.ranks`); the top-k set breaks ties by position, i.e.
object_id order on aligned rows.
All functions are pure numpy on aligned arrays (row i is the same object in every system).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fmb.compare.rankings import jaccard_top, retention, spearman, top_mask
from fmb.errors import UsageError
from fmb.protocol.metrics import ranks, resolve_k


def pair_stats(s1: np.ndarray, s2: np.ndarray, top_k: int) -> dict[str, float]:
    """Every pairwise statistic of ``fmb compare``, for one ordered pair (source s1, target s2)."""
    n = len(s1)
    k1, k10 = resolve_k("1%", n), resolve_k("10%", n)
    return {
        "spearman": spearman(s1, s2),
        "jaccard_top1pct": jaccard_top(s1, s2, k1),
        f"jaccard_top{top_k}": jaccard_top(s1, s2, min(top_k, n)),
        "retention_top1_top1": retention(s1, s2, k1, k1),
        "retention_top1_top10": retention(s1, s2, k1, k10),
    }


def bootstrap_ci(
    stat: Callable[[np.ndarray], dict[str, float]], n: int, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each statistic: ``stat(idx)`` on ``n_boot`` resamples of the
    ``n`` objects (with replacement, seeded)."""
    if n_boot < 1:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for key, v in stat(rng.integers(0, n, n)).items():
            draws.setdefault(key, []).append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        k: (float(np.nanpercentile(v, lo)), float(np.nanpercentile(v, hi)))
        if np.isfinite(v).any()
        else (float("nan"), float("nan"))
        for k, v in draws.items()
    }


def disagreement(s1: np.ndarray, s2: np.ndarray, k: int) -> np.ndarray:
    """Indices of objects in s1's top-k but not in s2's top-k, most anomalous (in s1) first."""
    r1 = ranks(s1)
    idx = np.flatnonzero((r1 <= k) & ~top_mask(s2, k))
    return idx[np.argsort(r1[idx])]


def check_aligned(S: np.ndarray) -> None:
    """An aligned [N objects, M systems] score matrix that the statistics can use."""
    if S.ndim != 2 or S.shape[1] < 2:
        raise UsageError(f"compare: need at least 2 systems, got {S.shape[1] if S.ndim == 2 else 0}")
    if S.shape[0] < 2:
        raise UsageError(f"compare: need at least 2 objects common to every system, got {S.shape[0]}")
