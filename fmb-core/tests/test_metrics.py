"""Metrics against values computed by hand."""

import numpy as np
import pytest

from fmb.protocol.metrics import compute_metrics, ranks, resolve_k


def test_ranks_are_one_based_descending_and_stable():
    np.testing.assert_array_equal(ranks(np.array([0.1, 0.9, 0.5, 0.9])), [4, 1, 3, 2])


def test_resolve_k():
    assert resolve_k("1%", 1000) == 10
    assert resolve_k("1%", 20) == 1
    assert resolve_k(50, 20) == 20


def test_hand_computed_metrics():
    # 10 objects, 3 anomalies at ranks 1, 3 and 6.
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], float)
    y = np.zeros(10, bool)
    y[[0, 2, 5]] = True
    cls = np.array(["a", "n", "b", "n", "n", "a", "n", "n", "n", "n"]).astype(object)
    cls[cls == "n"] = "normal"
    m = compute_metrics(scores, y, cls)
    # AUROC: pairs (anomaly, normal) ranked correctly: anomaly@1 beats 7, @3 beats 6, @6 beats 4 -> 17/21
    assert m["auroc"] == pytest.approx(17 / 21)
    # AP (sklearn, step-wise): precision at each hit = 1/1, 2/3, 3/6 -> mean
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert m["precision@10"] == pytest.approx(0.3)
    assert m["recall@10"] == pytest.approx(1.0)
    assert m["precision@1%"] == pytest.approx(1.0)  # k = 1
    assert m["recall@1%"] == pytest.approx(1 / 3)
    # top 5% of 10 -> k = 1 (rounded 0.5 -> at least 1): only class 'a' (rank 1) is found, 1 of 2
    pc = m["per_class"]
    assert pc["a"]["n"] == 2 and pc["a"]["recall@5%"] == pytest.approx(0.5)
    assert pc["b"]["recall@5%"] == 0.0
    # class b (rank 3) vs 7 normals: beats 6 of 7
    assert pc["b"]["auroc_vs_normal"] == pytest.approx(6 / 7)


def test_no_positives_gives_none_not_a_number():
    m = compute_metrics(np.arange(5.0), np.zeros(5, bool))
    assert m["auroc"] is None and m["average_precision"] is None and m["recall@10"] is None
