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


def compute_metrics(scores: np.ndarray, is_anomaly: np.ndarray, anomaly_class: np.ndarray | None = None,
                    labelled: np.ndarray | None = None) -> dict:
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
    out: dict = {"n_objects": n, "n_unlabelled": int((~keep).sum()), "n_anomalies": int(y.sum()),
                 "auroc": _auroc(y, s),
                 "average_precision": float(average_precision_score(y, s)) if y.any() else None}
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
        out[c] = {"n": int(sel.sum()), "recall@5%": expected_hits(s, sel, k) / int(sel.sum()),
                  "auroc_vs_normal": _auroc(sel[both], s[both])}
    return out


def artefact_fraction(scores: np.ndarray, anomaly_class: np.ndarray, artefact_classes: tuple[str, ...] | list[str]
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
