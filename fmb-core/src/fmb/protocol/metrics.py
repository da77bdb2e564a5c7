"""Scores against labels: AUROC, average precision, precision/recall@k, recall per class.

Every metric here depends only on the multiset of (score, label) pairs, never on the order of the
rows (docs/metrics.md):

* ranks: competition ranking, ``scipy.stats.rankdata(-scores, method="min")``: rank 1 is the
  most anomalous object and tied objects share the best rank of their group ("1224").
* AUROC and average precision: scikit-learn's, which treat a group of tied scores as one
  threshold (a tie between an anomaly and a normal object counts half in AUROC).
* precision@k, recall@k and per-class recall@5%: tie-aware *expected* values over every order of
  the tied objects (McSherry & Najork 2008, "Computing information retrieval performance measures
  efficiently in the presence of tied scores", ECIR): when a tie group straddles the cut-off k,
  each of its members counts with the fraction of the group's places that fall inside the top k.
* unlabelled objects (null ``is_anomaly``) are excluded before anything is computed, and counted.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from fmb.data.canonical import NORMAL_CLASS

K_VALUES: tuple[int | str, ...] = (10, 50, 100, "1%")
CLASS_RECALL_FRACTION = 0.05


def ranks(scores: np.ndarray) -> np.ndarray:
    """``[N]`` int64 1-based ranks, 1 = highest score; tied scores share the smallest rank of their group.

    Uses ``scipy.stats.rankdata`` (method "min") so the rank of an object does not depend on where
    it sits in the input. Scores must be finite.
    """
    s = np.asarray(scores, dtype=np.float64)
    return rankdata(-s, method="min").astype(np.int64)


def resolve_k(k: int | str, n: int) -> int:
    """``"1%"`` of ``n`` objects (at least 1), or ``k`` capped at ``n``."""
    if isinstance(k, str) and k.endswith("%"):
        return max(1, int(round(n * float(k[:-1]) / 100.0)))
    return min(int(k), n)


def top_k_weights(scores: np.ndarray, k: int) -> np.ndarray:
    """``[N]`` weights in [0, 1]: the probability that each object is among the ``k`` highest scores when
    tied scores are ordered at random (McSherry & Najork 2008). Objects strictly above the k-th
    highest score get 1, those tied with it get ``(k - n_above) / n_tied``, the rest 0; the weights sum to k.
    """
    s = np.asarray(scores, dtype=np.float64)
    w = np.zeros(len(s))
    if k <= 0 or len(s) == 0:
        return w
    cut = np.sort(s)[::-1][min(k, len(s)) - 1]
    above, tied = s > cut, s == cut
    w[above] = 1.0
    w[tied] = (min(k, len(s)) - int(above.sum())) / int(tied.sum())
    return w


def expected_hits(scores: np.ndarray, selected: np.ndarray, k: int) -> float:
    """Expected number of ``selected`` objects among the ``k`` highest scores, ties ordered at random:
    ``(selected above the cut) + (selected tied at the cut) * (places left) / (tied)``, from integer
    counts so that the result does not depend on the order of the rows (not even in the last bit)."""
    s = np.asarray(scores, dtype=np.float64)
    sel = np.asarray(selected, dtype=bool)
    if k <= 0 or len(s) == 0:
        return 0.0
    k = min(k, len(s))
    cut = np.sort(s)[::-1][k - 1]
    above, tied = s > cut, s == cut
    return int((sel & above).sum()) + int((sel & tied).sum()) * (k - int(above.sum())) / int(tied.sum())


def precision_recall_at_k(y: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float]:
    """Tie-aware expected precision and recall among the ``k`` top-scored objects (see module docstring)."""
    y = np.asarray(y, dtype=bool)
    hits = expected_hits(scores, y, k)
    positives = int(y.sum())
    return hits / k, (hits / positives if positives else float("nan"))


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def compute_metrics(
    scores: np.ndarray,
    is_anomaly: np.ndarray,
    anomaly_class: np.ndarray | None = None,
    labelled: np.ndarray | None = None,
) -> dict:
    """All label-based metrics for one ranking of ``N`` objects. Undefined values (no positives) are None.

    ``scores`` [N] finite floats (higher = more anomalous); ``is_anomaly`` [N] bool; ``anomaly_class``
    [N] strings ("normal" for normal objects; see :func:`fmb.data.canonical.resolve_labels`);
    ``labelled`` [N] bool, False for unlabelled objects, which are left out of every metric and
    counted in ``n_unlabelled``. ``n_objects`` is the number of labelled objects the metrics are over.
    """
    s = np.asarray(scores, dtype=np.float64)
    keep = np.ones(len(s), bool) if labelled is None else np.asarray(labelled, dtype=bool)
    s = s[keep]
    y = np.asarray(is_anomaly, dtype=bool)[keep]
    n = len(s)
    out: dict = {
        "n_objects": n,
        "n_unlabelled": int((~keep).sum()),
        "n_anomalies": int(y.sum()),
        "auroc": _auroc(y, s),
        "average_precision": float(average_precision_score(y, s)) if y.any() else None,
    }
    for k in K_VALUES:
        kk = min(resolve_k(k, n), n)
        p, rec = precision_recall_at_k(y, s, kk) if kk > 0 else (float("nan"), float("nan"))
        out[f"precision@{k}"] = None if np.isnan(p) else p
        out[f"recall@{k}"] = None if np.isnan(rec) else rec
    if anomaly_class is not None:
        out["per_class"] = per_class_metrics(s, np.asarray(anomaly_class, dtype=object)[keep].astype(str))
    return out


def per_class_metrics(s: np.ndarray, cls: np.ndarray) -> dict:
    """Per anomaly class: count, tie-aware expected recall within the top 5% of all objects, and
    AUROC of that class vs normal objects."""
    k = resolve_k(f"{CLASS_RECALL_FRACTION * 100:g}%", len(s))
    normal = cls == NORMAL_CLASS
    out = {}
    for c in sorted(set(cls.tolist()) - {NORMAL_CLASS}):
        sel = cls == c
        both = sel | normal
        out[c] = {
            "n": int(sel.sum()),
            "recall@5%": expected_hits(s, sel, k) / int(sel.sum()),
            "auroc_vs_normal": _auroc(sel[both], s[both]),
        }
    return out


def artefact_fraction(
    scores: np.ndarray, anomaly_class: np.ndarray, artefact_classes: tuple[str, ...] | list[str]
) -> dict[str, float | None]:
    """Tie-aware expected fraction of artefacts among the k top-ranked objects, for k in ``K_VALUES``.

    ``scores`` float [N] (higher = more anomalous) of the labelled objects, ``anomaly_class`` str [N]; an
    object is an artefact when its class is one of ``artefact_classes`` (the data set's
    ``Dataset.artefact_classes``). Ties at the cut-off count fractionally, as for precision@k
    (:func:`expected_hits`), so the value never depends on row order. Keys ``"artefact_fraction@<k>"``
    (lower is better); {} when ``artefact_classes`` is empty (the data set does not say).
    """
    if not len(artefact_classes):
        return {}
    s = np.asarray(scores, dtype=np.float64)
    art = np.isin(np.asarray(anomaly_class, dtype=object).astype(str), list(artefact_classes))
    out: dict[str, float | None] = {}
    for k in K_VALUES:
        kk = min(resolve_k(k, len(s)), len(s))
        out[f"artefact_fraction@{k}"] = expected_hits(s, art, kk) / kk if kk > 0 else None
    return out


# ------------------------------------------------------------------ bootstrap confidence intervals

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95
_BATCH = 100  # resamples evaluated together: [100, N] float arrays (31 MB at N = 39k)


class _GroupedRanking:
    """The objects sorted once by score (descending) and cut into tie groups, so that the AUROC and AP of
    any bootstrap resample follow from per-group sums of the resample's counts (no sort per resample).

    For a resample with ``P_g`` anomalies and ``N_g`` normal objects in tie group ``g`` (groups from the
    highest score down): AUROC = sum_g P_g (N_below_g + N_g / 2) / (P N), the Mann-Whitney statistic with
    a tie counting 1/2 (as scikit-learn's ``roc_auc_score``); AP = sum_g P_g precision_g / P with
    precision_g = (anomalies in groups <= g) / (objects in groups <= g), a tie group being one threshold
    (as scikit-learn's ``average_precision_score``).
    """

    def __init__(self, scores: np.ndarray, is_anomaly: np.ndarray) -> None:
        self.n = len(scores)
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        ss = np.asarray(scores, dtype=np.float64)[order]
        self.rank_of = np.empty(self.n, dtype=np.int64)
        self.rank_of[order] = np.arange(self.n)  # object -> position in the sorted order
        self.y = np.asarray(is_anomaly, dtype=bool)[order]
        self.starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])  # first position of each tie group

    def group_counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P, N)`` [B, G]: anomalies and normal objects of each resample (rows of ``idx`` [B, N]) per group."""
        b = idx.shape[0]
        pos = self.rank_of[idx] + (np.arange(b) * self.n)[:, None]
        counts = np.bincount(pos.ravel(), minlength=b * self.n).reshape(b, self.n).astype(np.float64)
        p, q = counts * self.y, counts * ~self.y
        if len(self.starts) < self.n:  # some scores tie: sum within groups
            p, q = np.add.reduceat(p, self.starts, axis=1), np.add.reduceat(q, self.starts, axis=1)
        return p, q

    def both(self, idx: np.ndarray) -> np.ndarray:
        """``[2, B]``: AUROC and AP of each resample (rows of ``idx`` [B, N] object indices)."""
        p, q = self.group_counts(idx)
        return np.stack([self._auroc(p, q), self._ap(p, q)])

    def auroc(self, idx: np.ndarray) -> np.ndarray:
        return self._auroc(*self.group_counts(idx))

    def average_precision(self, idx: np.ndarray) -> np.ndarray:
        return self._ap(*self.group_counts(idx))

    @staticmethod
    def _auroc(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        pt, qt = p.sum(axis=1), q.sum(axis=1)
        below = qt[:, None] - np.cumsum(q, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((pt > 0) & (qt > 0), (p * (below + q / 2)).sum(axis=1) / (pt * qt), np.nan)

    @staticmethod
    def _ap(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        pt = p.sum(axis=1)
        tp, seen = np.cumsum(p, axis=1), np.cumsum(p + q, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(seen > 0, tp / np.maximum(seen, 1), 0.0)
            return np.where(pt > 0, (p * prec).sum(axis=1) / pt, np.nan)


def bootstrap_intervals(
    scores: np.ndarray,
    is_anomaly: np.ndarray,
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict[str, list[float] | float | None]:
    """Bootstrap confidence intervals of AUROC and average precision, resampling objects.

    ``scores`` [N] finite floats and ``is_anomaly`` [N] bool of the labelled objects, in a fixed order
    (the caller sorts them by ``object_id`` so that the intervals do not depend on the row order).
    ``scipy.stats.bootstrap`` (a kept library, rather than an own loop) draws ``n_resamples`` resamples of
    the objects with replacement, seeded with ``seed``: the anomalies and the normal objects are two
    samples resampled independently (``paired=False``; a stratified bootstrap, pROC's default for AUROC,
    Carpenter & Bithell 2000), so every resample has both classes and each object keeps its score and
    label. The interval is the percentile one (BCa would need N jackknife evaluations, too slow at
    survey sizes) and ``*_stderr`` is the standard deviation of the bootstrap
    distribution (as lm-evaluation-harness's ``*_stderr``). Returns ``auroc_ci`` ``[lo, hi]``,
    ``auroc_stderr``, ``average_precision_ci``, ``average_precision_stderr`` and the settings; a metric
    that is undefined (a class with fewer than two objects: scipy's stratified bootstrap needs two per
    sample, and one anomaly gives no spread to resample) has None.
    """
    from scipy.stats import bootstrap

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_anomaly, dtype=bool)
    out: dict[str, list[float] | float | None] = {
        "bootstrap_resamples": n_resamples,
        "bootstrap_confidence": confidence,
    }
    for name in ("auroc", "average_precision"):
        out[f"{name}_ci"], out[f"{name}_stderr"] = None, None
    if min(int(y.sum()), int((~y).sum())) < 2:
        return out
    ranking = _GroupedRanking(s, y)

    def stat(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.concatenate([np.atleast_2d(pos), np.atleast_2d(neg)], axis=-1).astype(np.int64)
        v = ranking.both(idx.reshape(-1, idx.shape[-1]))
        return v.reshape(2, *np.shape(pos)[:-1])

    # two samples (the anomalies, the normal objects) resampled independently (paired=False): a stratified
    # bootstrap, as pROC's default for AUROC, so that no resample lacks a class
    res = bootstrap(
        (np.flatnonzero(y), np.flatnonzero(~y)),
        stat,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=_BATCH,
        paired=False,
        random_state=np.random.default_rng(seed),
    )
    for j, name in enumerate(("auroc", "average_precision")):
        lo, hi = float(res.confidence_interval.low[j]), float(res.confidence_interval.high[j])
        if np.isfinite(lo) and np.isfinite(hi):
            out[f"{name}_ci"] = [lo, hi]
            out[f"{name}_stderr"] = float(res.standard_error[j])
    return out
