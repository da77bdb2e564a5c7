"""Metrics against values computed by hand."""

import numpy as np
import pytest

from fmb.data.canonical import NORMAL_CLASS, UNKNOWN_CLASS, resolve_labels
from fmb.protocol.metrics import compute_metrics, precision_recall_at_k, ranks, resolve_k, top_k_weights


def test_ranks_are_one_based_descending_and_ties_share_the_best_rank():
    np.testing.assert_array_equal(ranks(np.array([0.1, 0.9, 0.5, 0.9])), [4, 1, 3, 1])
    np.testing.assert_array_equal(ranks(np.array([2.0, 2.0, 2.0])), [1, 1, 1])


def test_precision_at_k_with_a_tie_across_the_cut_is_the_expectation_over_tie_orders():
    # scores 5 > 4 = 4 = 4 > 1; k = 2: object 0 is in, one of the three tied objects (1, 2, 3) is in.
    s = np.array([5.0, 4, 4, 4, 1])
    y = np.array([False, True, False, False, True])
    np.testing.assert_allclose(top_k_weights(s, 2), [1, 1 / 3, 1 / 3, 1 / 3, 0])
    # enumerate the 3! orders of the tie and average the precision of the top 2 by brute force
    import itertools

    precs = []
    for perm in itertools.permutations([1, 2, 3]):
        top = [0, perm[0]]
        precs.append(y[top].sum() / 2)
    p, r = precision_recall_at_k(y, s, 2)
    assert p == pytest.approx(np.mean(precs)) and r == pytest.approx(np.mean(precs) * 2 / 2)


def test_metrics_do_not_depend_on_row_order_when_scores_tie():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 4, 200).astype(float)  # heavy ties
    y = rng.random(200) < 0.2
    cls = np.where(y, np.where(rng.random(200) < 0.5, "a", "b"), NORMAL_CLASS).astype(object)
    ref = compute_metrics(s, y, cls)
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(200)
        assert compute_metrics(s[p], y[p], cls[p]) == ref


def test_unlabelled_objects_are_left_out_and_counted():
    s = np.array([9.0, 8, 7, 6, 5, 4])
    y = np.array([False, True, False, False, True, False])
    labelled = np.array([True, True, False, True, True, False])
    m = compute_metrics(s, y, labelled=labelled)
    ref = compute_metrics(s[labelled], y[labelled])
    assert m["n_unlabelled"] == 2 and m["n_objects"] == 4 and ref["n_unlabelled"] == 0
    assert m["average_precision"] == pytest.approx(ref["average_precision"]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["auroc"] == ref["auroc"]


def test_resolve_labels_null_is_unlabelled_and_flagged_without_class_is_unknown():
    import pyarrow as pa

    y = pa.array([True, None, False, True, True, False], pa.bool_())
    c = pa.array(["blob", "blob", None, None, "normal", "blob"], pa.string())
    labelled, anom, cls = resolve_labels(y, c)
    assert labelled.tolist() == [True, False, True, True, True, True]
    assert anom.tolist() == [True, False, False, True, True, False]
    assert cls.tolist() == ["blob", None, NORMAL_CLASS, UNKNOWN_CLASS, UNKNOWN_CLASS, NORMAL_CLASS]


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
