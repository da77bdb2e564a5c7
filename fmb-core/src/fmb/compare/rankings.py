"""Agreement between rankings of the same objects: Spearman, top-set Jaccard, retention.

Pure numpy. Scores are "higher = more anomalous"; the top-k set of a ranking is its k
highest-scoring objects (ties broken by position; :func:`align` sorts rows by object_id, so that is
object_id order).
Inputs are aligned arrays: element i is the same object in both rankings (see :func:`align`).
``k`` is a count (int >= 1), a fraction (float in (0, 1)) or a percentage string ("1%").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

K = int | float | str


def resolve_k(k: K, n: int) -> int:
    """The number of objects meant by ``k`` among ``n``: fractions round, with at least 1."""
    if isinstance(k, str):
        if not k.endswith("%"):
            raise ValueError(f"k must be a count, a fraction or 'N%', got {k!r}")
        k = float(k[:-1]) / 100.0
        if not 0 < k <= 1:
            raise ValueError(f"percentage k must be in (0%, 100%], got {k * 100:g}%")
        return max(1, int(round(n * k)))
    if isinstance(k, float) and k < 1:
        if k <= 0:
            raise ValueError(f"fraction k must be in (0, 1), got {k}")
        return max(1, int(round(n * k)))
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return min(int(k), n)


def order(scores: np.ndarray) -> np.ndarray:
    """Indices from the most to the least anomalous (stable for ties)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_mask(scores: np.ndarray, k: K) -> np.ndarray:
    """Boolean mask of the top-k objects."""
    s = np.asarray(scores)
    mask = np.zeros(len(s), dtype=bool)
    mask[order(s)[: resolve_k(k, len(s))]] = True
    return mask


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ascending 1-based ranks with ties given their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64)
    idx = np.argsort(x, kind="stable")
    xs = x[idx]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    r = np.empty(len(x))
    r[idx] = np.repeat(avg, ends - starts)
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of the average ranks; NaN if either is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"spearman needs two aligned 1-D arrays, got {a.shape} and {b.shape}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def jaccard_top(a: np.ndarray, b: np.ndarray, k: K) -> float:
    """|A ∩ B| / |A ∪ B| of the two top-k sets."""
    ma, mb = top_mask(a, k), top_mask(b, k)
    return float((ma & mb).sum() / max(int((ma | mb).sum()), 1))


def retention(a: np.ndarray, b: np.ndarray, k_a: K = "1%", k_b: K = "1%") -> float:
    """Fraction of A's top-k_a objects that are in B's top-k_b (e.g. top 1% kept in top 10%)."""
    ma, mb = top_mask(a, k_a), top_mask(b, k_b)
    return float((ma & mb).sum() / max(int(ma.sum()), 1))


def pairwise(scores: np.ndarray, stat: Callable[[np.ndarray, np.ndarray], float]) -> np.ndarray:
    """The [M, M] matrix ``stat(scores[:, i], scores[:, j])`` of an aligned [N, M] score matrix
    (row i = source, column j = target, so asymmetric statistics such as retention read i -> j)."""
    S = np.asarray(scores)
    m = S.shape[1]
    return np.array([[stat(S[:, i], S[:, j]) for j in range(m)] for i in range(m)], dtype=np.float64)


def joinable_ids(ids: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Id arrays of several runs in one comparable type.

    A data set's ids are int64 or text (see :func:`fmb.data.canonical.id_type`); runs of the same
    objects may have stored them either way. All-integer arrays are returned as int64; when any
    array holds text, integer ids become their decimal text (int 12 == "12"). Other kinds (such as
    fractional floats) raise ValueError.
    """
    arrays = [np.asarray(i) for i in ids]
    kinds = set()
    for a in arrays:
        if a.dtype.kind in "iu":
            kinds.add("int")
        elif a.dtype.kind in "OUS" and all(isinstance(v, str) for v in a.tolist()):
            kinds.add("text")
        elif a.size:
            raise ValueError(f"object ids must be integers or text, got {a.dtype} values")
    if kinds == {"int"}:
        return [a.astype(np.int64) for a in arrays]
    if kinds == {"text", "int"}:
        return [np.array([str(v) for v in a.tolist()], dtype=object) for a in arrays]
    return arrays


def align(ids: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The object ids common to every ranking (sorted) and the [N common, M] score matrix.

    Ids are made comparable first (:func:`joinable_ids`: int 12 matches "12"). Non-finite scores
    count as absent; duplicated ids are an error.
    """
    if len(ids) != len(scores) or not ids:
        raise ValueError("align needs one score array per id array, and at least one of each")
    ids = joinable_ids(ids)
    kept = []
    for i, s in zip(ids, scores):
        i, s = np.asarray(i), np.asarray(s, dtype=np.float64)
        if len(np.unique(i)) != len(i):
            raise ValueError("align: duplicate object ids in one ranking")
        ok = np.isfinite(s)
        kept.append((i[ok], s[ok]))
    common = kept[0][0]
    for i, _ in kept[1:]:
        common = np.intersect1d(common, i)
    common = np.sort(common)
    cols = []
    for i, s in kept:
        o = np.argsort(i, kind="stable")
        cols.append(s[o[np.searchsorted(i[o], common)]])
    return common, np.column_stack(cols) if cols else np.empty((len(common), 0))
