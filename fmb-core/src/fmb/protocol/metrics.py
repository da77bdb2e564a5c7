"""Scores against labels: AUROC, average precision, precision/recall@k, recall per class.

Ranks: rank 1 is the most anomalous object; ties are broken by input order (stable).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fmb.data.canonical import NORMAL_CLASS

K_VALUES: tuple[int | str, ...] = (10, 50, 100, "1%")
CLASS_RECALL_FRACTION = 0.05


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, 1 = highest score; ties keep input order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    r = np.empty(len(order), dtype=np.int64)
    r[order] = np.arange(1, len(order) + 1)
    return r


def resolve_k(k: int | str, n: int) -> int:
    """``"1%"`` of ``n`` objects (at least 1), or ``k`` capped at ``n``."""
    if isinstance(k, str) and k.endswith("%"):
        return max(1, int(round(n * float(k[:-1]) / 100.0)))
    return min(int(k), n)


def precision_recall_at_k(y: np.ndarray, r: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall among the ``k`` top-ranked objects."""
    hits = int(y[r <= k].sum())
    positives = int(y.sum())
    return hits / k, (hits / positives if positives else float("nan"))


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def compute_metrics(scores: np.ndarray, is_anomaly: np.ndarray,
                    anomaly_class: np.ndarray | None = None) -> dict:
    """All label-based metrics for one ranking. Undefined values (no positives) are None."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_anomaly, dtype=bool)
    n = len(s)
    r = ranks(s)
    out: dict = {"n_objects": n, "n_anomalies": int(y.sum()), "auroc": _auroc(y, s),
                 "average_precision": float(average_precision_score(y, s)) if y.any() else None}
    for k in K_VALUES:
        kk = resolve_k(k, n)
        p, rec = precision_recall_at_k(y, r, kk)
        out[f"precision@{k}"] = p
        out[f"recall@{k}"] = None if np.isnan(rec) else rec
    if anomaly_class is not None:
        out["per_class"] = per_class_metrics(s, r, np.asarray(anomaly_class).astype(str))
    return out


def per_class_metrics(s: np.ndarray, r: np.ndarray, cls: np.ndarray) -> dict:
    """Per anomaly class: count, recall within the top 5%, and AUROC of that class vs normal objects."""
    k = resolve_k(f"{CLASS_RECALL_FRACTION * 100:g}%", len(s))
    normal = cls == NORMAL_CLASS
    out = {}
    for c in sorted(set(cls.tolist()) - {NORMAL_CLASS}):
        sel = cls == c
        both = sel | normal
        out[c] = {"n": int(sel.sum()), "recall@5%": float((r[sel] <= k).mean()),
                  "auroc_vs_normal": _auroc(sel[both], s[both])}
    return out


def artefact_fraction(scores: np.ndarray, anomaly_class: np.ndarray, artefact_classes: tuple[str, ...] | list[str]
                      ) -> dict[str, float]:
    """Fraction of artefacts among the k top-ranked objects, for k in ``K_VALUES``.

    ``scores`` float [N] (higher = more anomalous), ``anomaly_class`` str [N]; an object is an artefact when its
    class is one of ``artefact_classes`` (the data set's ``Dataset.artefact_classes``). Keys
    ``"artefact_fraction@<k>"``; {} when ``artefact_classes`` is empty (the data set does not say).
    """
    if not len(artefact_classes):
        return {}
    s = np.asarray(scores, dtype=np.float64)
    art = np.isin(np.asarray(anomaly_class).astype(str), list(artefact_classes))
    r = ranks(s)
    return {f"artefact_fraction@{k}": float(art[r <= resolve_k(k, len(s))].mean()) if len(s) else None
            for k in K_VALUES}
