"""Rank-agreement formulas (fmb.compare.rankings) against values worked out by hand."""

import numpy as np
import pytest

from fmb.compare import rankings as R


def test_resolve_k_counts_fractions_and_percentages():
    assert R.resolve_k(5, 100) == 5 and R.resolve_k(500, 100) == 100
    assert R.resolve_k(0.1, 200) == 20 and R.resolve_k("1%", 200) == 2
    assert R.resolve_k("1%", 30) == 1  # 0.3 rounds to 0: at least one object
    assert R.resolve_k("10%", 1000) == 100
    for bad in (0, -1, "x", 0.0, "0%"):
        with pytest.raises(ValueError):
            R.resolve_k(bad, 10)


def test_top_mask_breaks_ties_by_input_order():
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert R.top_mask(s, 2).tolist() == [False, True, False, True, False]
    assert R.top_mask(s, 3).tolist() == [False, True, True, True, False]
    # tie at the cut: 0.9 (idx 1) and 0.9 (idx 3); k = 1 keeps the first
    assert np.flatnonzero(R.top_mask(s, 1)).tolist() == [1]


def test_average_ranks_match_rankdata():
    assert R.average_ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert R.spearman(a, a) == pytest.approx(1.0)
    assert R.spearman(a, -a) == pytest.approx(-1.0)
    # ranks b = [2, 1, 4, 3, 5]: d = [-1, 1, -1, 1, 0], sum d^2 = 4; rho = 1 - 6*4/(5*24) = 0.8
    b = np.array([20.0, 10.0, 40.0, 30.0, 50.0])
    assert R.spearman(a, b) == pytest.approx(0.8)
    # ties: a = [1, 2, 2, 3] -> ranks [1, 2.5, 2.5, 4], centred [-1.5, 0, 0, 1.5]; b centred
    # [-1.5, -0.5, 0.5, 1.5]; rho = 4.5 / sqrt(4.5 * 5)
    assert R.spearman(np.array([1, 2, 2, 3.0]), np.array([1, 2, 3, 4.0])) == pytest.approx(4.5 / np.sqrt(22.5))
    assert np.isnan(R.spearman(np.ones(4), a[:4]))
    with pytest.raises(ValueError):
        R.spearman(a, a[:3])


def test_jaccard_top_by_hand():
    a = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0.0])  # top 3 = {0, 1, 2}
    b = np.array([9, 0, 7, 6, 5, 4, 3, 2, 1, 8.0])  # top 3 = {0, 9, 2}
    assert R.jaccard_top(a, b, 3) == pytest.approx(2 / 4)
    assert R.jaccard_top(a, b, 1) == 1.0
    assert R.jaccard_top(a, b, "10%") == 1.0  # 10% of 10 = 1 object
    # top 5: {0, 1, 2, 3, 4} vs {0, 9, 2, 3, 4}: 4 shared of 6
    assert R.jaccard_top(a, b, 5) == pytest.approx(4 / 6)
    assert R.jaccard_top(a, b, 0.5) == R.jaccard_top(a, b, 5)


def test_retention_is_directional():
    n = 200
    a = np.arange(n, dtype=float)[::-1]  # object 0 is the most anomalous in A
    b = a.copy()
    b[[0, 1]] = b[[150, 151]]  # B sends A's top 2 down to ranks 151-152 and lifts objects 150, 151
    b[[150, 151]] = [199.0, 198.0]
    # top 1% of 200 = 2 objects; top 10% = 20
    assert R.retention(a, b, "1%", "1%") == 0.0
    assert R.retention(a, b, "1%", "10%") == 0.0
    assert R.retention(a, a, "1%", "10%") == 1.0
    c = a.copy()
    c[[1, 10]] = c[[10, 1]]  # A's second object falls to rank 11: kept in top 10%, lost from top 1%
    assert R.retention(a, c, "1%", "1%") == 0.5 and R.retention(a, c, "1%", "10%") == 1.0


def test_pairwise_reads_source_row_to_target_column():
    a = np.array([3, 2, 1, 0.0])
    b = np.array([0, 1, 2, 3.0])
    S = np.column_stack([a, b, a])
    M = R.pairwise(S, R.spearman)
    np.testing.assert_allclose(M, [[1, -1, 1], [-1, 1, -1], [1, -1, 1]])
    J = R.pairwise(S, lambda x, y: R.jaccard_top(x, y, 2))
    assert J[0, 1] == 0.0 and J[0, 2] == 1.0 and np.allclose(np.diag(J), 1)


def test_align_intersects_ids_and_drops_non_finite():
    ids, S = R.align(
        [np.array([5, 1, 3, 7]), np.array([3, 5, 9, 1])],
        [np.array([0.5, 0.1, 0.3, 0.7]), np.array([3.0, np.nan, 9.0, 1.0])],
    )
    assert ids.tolist() == [1, 3]  # 5 is NaN in the second ranking
    np.testing.assert_array_equal(S, [[0.1, 1.0], [0.3, 3.0]])
    with pytest.raises(ValueError):
        R.align([np.array([1, 1])], [np.array([0.0, 1.0])])
