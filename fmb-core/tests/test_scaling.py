"""Detectors at survey scale: the memory-bounded and one-pass forms give pyod's numbers; the NN-descent graph
measures its own recall, rebuilds once when it misses the target, and does not depend on row order."""

import warnings

import numpy as np
import pytest
from pyod.models.ecod import ECOD
from pyod.models.iforest import IForest

from fmb.detectors import base
from fmb.detectors import neighbours as nb
from fmb.detectors.base import standardise
from fmb.detectors.columnwise import ecod_scores
from fmb.detectors.pyod_adapter import make_detector
from fmb.errors import UsageError


def _columns(n: int, seed: int) -> np.ndarray:
    """Columns of every kind ECOD distinguishes: symmetric, right- and left-skewed, many ties, constant."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 9))
    X[:, 1] = rng.exponential(size=n)
    X[:, 2] = -rng.lognormal(size=n)
    X[:, 3] = np.round(X[:, 3])
    X[:, 4] = rng.integers(0, 3, n)
    X[:, 5] = 2.5
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ecod_column_by_column_equals_pyod(dtype):
    X = _columns(1200, 0).astype(dtype)
    want = ECOD().fit(X).decision_scores_
    np.testing.assert_allclose(ecod_scores(X), want, rtol=1e-12)


def test_ecod_stream_threshold_switches_and_keeps_pyod_below():
    X = _columns(500, 1)
    below = make_detector("ecod").fit_score(X)  # 500 < STREAM_THRESHOLD: pyod itself, bit for bit
    assert np.array_equal(below, ECOD().fit(standardise(X)).decision_scores_)
    d = make_detector("ecod", stream_threshold=500)
    np.testing.assert_allclose(d.fit_score(X), below, rtol=1e-12)
    assert d.details_ == {"columnwise": True}
    with pytest.raises(UsageError, match="stream_threshold"):
        make_detector("knn", stream_threshold=10)


@pytest.mark.parametrize(
    "params", [{}, {"max_features": 0.5, "bootstrap": True, "contamination": 0.05}, {"max_samples": 100}]
)
def test_iforest_one_scoring_pass_equals_pyod(params):
    X = _columns(800, 2)
    X[:, 5] += np.arange(800) % 7  # no constant column: pyod's IForest would see the same, but keep it varied
    want = IForest(**{"n_estimators": 300, "random_state": 4, **params}).fit(standardise(X)).decision_scores_
    assert np.array_equal(make_detector("iforest", **params).fit_score(X, seed=4), want)


@pytest.mark.parametrize("d", [1, 2, 17, 33])
def test_standardise_in_column_blocks_equals_whole_matrix(d):
    X = (np.random.default_rng(d).standard_normal((700, d)) * 3 + 1).astype(np.float32)
    mu, sd = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    want = (X - mu.astype(X.dtype)) / np.where(sd > 0, sd, 1.0).astype(X.dtype)
    assert base.STAT_BLOCK < 17
    assert np.array_equal(standardise(X), want)


def test_recall_counts_ties_as_hits():
    exact = np.array([[1.0, 2.0], [1.0, 1.0]])
    approx = np.array([[1.0, 3.0], [1.0, 1.0]])  # row 0 misses one; row 1 has another row at the same distance
    assert nb.recall_at_k(approx, exact) == 0.75


def _hard(n: int, d: int, seed: int) -> np.ndarray:
    """i.i.d. Gaussian rows: no low-dimensional structure, the hardest case for a graph search."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_nn_descent_rebuilds_once_when_recall_is_short(monkeypatch):
    X = _hard(3000, 48, 5)
    monkeypatch.setattr(nb, "ITERATIONS", 1)  # one join from a random graph: far from converged
    monkeypatch.setattr(nb, "RETRY_EXTRA_ITERATIONS", 9)
    dist, idx, info = nb.ann_knn(X, 10)
    assert info["rebuilt"] and info["iterations"] == 10
    assert info["recall_at_k"] >= nb.RECALL_TARGET
    exact_d, _ = nb.exact_knn(X, 10)
    assert nb.recall_at_k(dist, exact_d) >= 0.93  # the whole graph, not only the sample
    assert not (idx == np.arange(len(X))[:, None]).any()


def test_nn_descent_iterations_grow_with_log_n():
    per = nb.ITERATIONS_PER_DECADE
    assert nb.nn_descent_iterations(20_000) == nb.nn_descent_iterations(100_000) == nb.ITERATIONS
    assert nb.nn_descent_iterations(1_000_000) == nb.ITERATIONS + per
    assert nb.nn_descent_iterations(10_000_000) == nb.ITERATIONS + 2 * per
    assert nb.nn_descent_iterations(200_000) == nb.ITERATIONS + int(np.ceil(per * np.log10(2)))


def test_nn_descent_warns_when_recall_stays_under_the_target(monkeypatch):
    monkeypatch.setattr(nb, "ITERATIONS", 1)
    monkeypatch.setattr(nb, "RETRY_EXTRA_ITERATIONS", 0)
    monkeypatch.setattr(nb, "RETRY_POOL_EXTRA", nb.POOL_EXTRA)
    with pytest.warns(UserWarning, match="recall@k"):
        _, _, info = nb.ann_knn(_hard(3000, 48, 6), 10)
    assert info["rebuilt"] and info["recall_at_k"] < nb.RECALL_TARGET


def test_graph_distances_in_blocks_equal_one_block(monkeypatch):
    X = _hard(2500, 16, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = nb.ann_knn(X, 8)
        monkeypatch.setattr(nb, "QUERY_CHUNK", 97)
        chunked = nb.ann_knn(X, 8)
    assert np.array_equal(whole[0], chunked[0]) and np.array_equal(whole[1], chunked[1])
    assert not (whole[1] == np.arange(len(X))[:, None]).any()
    # each distance is the row's distance to the neighbour named, ascending
    want = np.sqrt(((X[whole[1]].astype(np.float64) - X[:, None].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(whole[0], want, rtol=1e-5)
    assert (np.diff(whole[0], axis=1) >= 0).all()


def test_graph_does_not_depend_on_row_order():
    X = _hard(2500, 24, 13)
    d, i, info = nb.ann_knn(X, 6, seed=2)
    p = np.random.default_rng(0).permutation(len(X))
    dp, ip, info_p = nb.ann_knn(X[p], 6, seed=2)
    assert np.array_equal(dp, d[p]) and np.array_equal(p[ip], i[p]) and info_p == info
    lof = make_detector("lof", ann_threshold=0)
    assert np.array_equal(lof.fit_score(X[p], seed=2), make_detector("lof", ann_threshold=0).fit_score(X, seed=2)[p])


def test_rows_with_a_broken_neighbour_list_are_searched_exactly(monkeypatch):
    import faiss

    X = _hard(2500, 16, 15)
    real = faiss.vector_to_array

    def broken(v):  # faiss does not promise K distinct in-range neighbours: self, a repeat, out of range
        a = real(v).reshape(len(X), -1).copy()
        a[0, 0], a[1, 1], a[2, 3] = 0, a[1, 0], len(X)
        return a.reshape(-1)

    monkeypatch.setattr(faiss, "vector_to_array", broken)
    d, i, _ = nb.ann_knn(X, 6)
    order = nb.memory_order(X)
    rows = order[[0, 1, 2]]  # the graph's positions 0-2 are these rows of X
    ed, ei = nb.exact_knn(X, 6)
    assert np.array_equal(i[rows], ei[rows])
    np.testing.assert_allclose(d[rows], ed[rows], rtol=1e-6)


def test_small_inputs_search_exactly():
    X = _hard(300, 8, 14)
    d, i, info = nb.ann_knn(X, 5)
    ed, ei = nb.exact_knn(X, 5)
    np.testing.assert_allclose(d, ed, rtol=1e-5)
    assert np.array_equal(i, ei) and info["recall_at_k"] == 1.0 and "exact" in info["index"]


def test_ann_details_reach_the_detector():
    X = _hard(2500, 8, 8)
    d = make_detector("lof", ann_threshold=0)
    d.fit_score(X, seed=3)
    info = d.details_["neighbours"]
    assert info["recall_sample"] == 1000 and info["K"] == 20 and 0.9 <= info["recall_at_k"] <= 1
    assert "NNDescent" in info["index"]
    exact = make_detector("lof")
    exact.fit_score(X)  # 2,500 < ann_threshold: pyod's exact search, nothing to report
    assert exact.details_ == {}


def test_cosine_scan_in_blocks(monkeypatch):
    X = _hard(300, 6, 9).astype(np.float64)
    X[7] = np.nan
    X[8] = 0.0
    monkeypatch.setattr(nb, "SCAN_BLOCK", 32)
    got = nb.cosine_to(X.astype(np.float32), X[0])
    want = [float(r @ X[0] / np.sqrt((r @ r) * (X[0] @ X[0]))) for r in X.astype(np.float32).astype(np.float64)]
    assert got[7] == -np.inf and got[8] == -np.inf
    keep = np.r_[0:7, 9:300]
    np.testing.assert_allclose(got[keep], np.asarray(want)[keep], rtol=1e-12)


def test_nearest_distance_equals_a_kd_tree():
    from scipy.spatial import cKDTree

    X = _hard(500, 5, 10).astype(np.float64)
    labelled = X[[3, 40, 41, 499]]
    got = nb.nearest_distance(X, labelled)
    np.testing.assert_allclose(got, cKDTree(labelled).query(X, k=1)[0], rtol=1e-12)
    assert got[3] == 0.0 and got[499] == 0.0


@pytest.mark.parametrize("params", [{}, {"n_bins": 5, "alpha": 0.2, "tol": 0.1}])
def test_hbos_in_row_blocks_equals_pyod(monkeypatch, params):
    from pyod.models.hbos import HBOS

    from fmb.detectors import columnwise

    X = _columns(900, 11).astype(np.float32)
    monkeypatch.setattr(columnwise, "ROW_BLOCK", 128)
    want = HBOS(**{"n_bins": 10, **params}).fit(standardise(X)).decision_scores_
    assert np.array_equal(make_detector("hbos", **params).fit_score(X), want)


def test_pca_subsample_fit_and_block_scoring(monkeypatch):
    from pyod.models.pca import PCA
    from scipy.stats import spearmanr

    from fmb.detectors import pyod_adapter as pa

    rng = np.random.default_rng(12)
    X = (rng.standard_normal((1500, 10)) @ rng.standard_normal((10, 10))).astype(np.float32)
    full = PCA().fit(standardise(X)).decision_scores_
    assert np.array_equal(pa.make_detector("pca").fit_score(X), full)  # below stream_threshold: pyod's fit
    monkeypatch.setattr(pa, "SCORE_BLOCK", 200)
    d = pa.make_detector("pca", stream_threshold=1500)
    assert np.array_equal(d.fit_score(X), full)  # every row chosen: block scoring changes nothing
    monkeypatch.setattr(pa, "SUBSAMPLE_ROWS", 500)
    d = pa.make_detector("pca", stream_threshold=1500)
    a = d.fit_score(X, seed=1)
    assert d.details_ == {"fit_rows": {"rows": 500, "of": 1500, "seed": 1}}
    assert np.array_equal(a, pa.make_detector("pca", stream_threshold=1500).fit_score(X, seed=1))  # seeded
    assert not np.array_equal(a, full) and spearmanr(a, full)[0] > 0.98  # an estimate of the same ranking


def test_results_record_the_neighbour_graph(tmp_path, fmb_home):
    from fmb.params import parse_spec
    from fmb.plugins import registry
    from fmb.protocol.run import RunConfig, run_system
    from fmb.reporting import Reporter
    from fmb.testing.survey_table import survey_table, write_table

    ds_name, ds_opts = parse_spec(write_table(survey_table(40, seed=1, n_anom=4), tmp_path / "t.parquet"))
    cfg = RunConfig(
        model="baseline",
        detector="knn",
        detector_params={"ann_threshold": 0},
        dataset=ds_name,
        dataset_options=ds_opts,
        modality="spectrum",
        output=str(tmp_path / "run"),
    )
    res = run_system(registry(), cfg, tmp_path / "run", Reporter(quiet=True))
    info = res["modalities"]["spectrum"]["details"]["neighbours"]
    assert "exact" in info["index"] and info["recall_at_k"] == 1.0 and info["recall_sample"] == 40  # 40 rows
    cfg.detector_params = {}
    res = run_system(registry(), cfg, tmp_path / "run2", Reporter(quiet=True))
    assert "details" not in res["modalities"]["spectrum"]  # exact search below ann_threshold: nothing to add


def test_memory_order_groups_near_rows_and_ignores_input_order(monkeypatch):
    # two k-means levels (4 coarse cells, then cells of about 60 rows) on rows from 12 well-separated blobs
    monkeypatch.setattr(nb, "CELL_ROWS", 60)
    monkeypatch.setattr(nb, "COARSE_CELLS", 4)
    rng = np.random.default_rng(16)
    centres = rng.standard_normal((12, 32)).astype(np.float32) * 20
    X = (centres[rng.integers(0, 12, 2400)] + rng.standard_normal((2400, 32)).astype(np.float32)).astype(np.float32)
    order = nb.memory_order(X)
    assert np.array_equal(np.sort(order), np.arange(len(X)))
    p = rng.permutation(len(X))
    assert np.array_equal(p[nb.memory_order(X[p])], order)  # the same rows in the same sequence
    step = np.linalg.norm(np.diff(X[order], axis=0), axis=1)
    step_content = np.linalg.norm(np.diff(X[nb.content_order(X)], axis=0), axis=1)
    # rows of one blob lie within ~12 of each other, blobs ~160 apart: consecutive rows in memory share a blob
    # except at the cell borders (about 40 of 2,399 steps); the 1-d projection order mixes the blobs
    assert np.mean(step < 40) > 0.98 and np.mean(step_content < 40) < 0.8
    d, i, _ = nb.ann_knn(X, 6, seed=2)
    dp, ip, _ = nb.ann_knn(X[p], 6, seed=2)
    assert np.array_equal(dp, d[p]) and np.array_equal(p[ip], i[p])


def test_huge_pages_hint_keeps_the_contents():
    a = np.random.default_rng(17).standard_normal((4096, 512)).astype(np.float32)  # 8 MB: whole 2 MB pages inside
    want = a.copy()
    assert isinstance(nb.huge_pages(a), bool)
    assert np.array_equal(a, want)
    assert nb.huge_pages(a[:10]) is False  # under two huge pages: nothing to ask for


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_duplicate_check_agrees_with_numpy_unique(dtype):
    rng = np.random.default_rng(21)
    X = rng.standard_normal((3000, 7)).astype(dtype)
    assert not base.may_have_duplicate_rows(X) and base.duplicate_rows(X) == 0 == len(X) - len(np.unique(X, axis=0))
    flipped = X.copy()  # the same bytes but the sign bits of two elements: distinct rows, distinct hashes
    flipped[:, [1, 4]] *= -1
    assert not base.may_have_duplicate_rows(np.vstack([X[:50], flipped[:50]]))
    Y = np.vstack([X, X[[5, 17, 17]]])  # three repeats, one row twice
    assert base.may_have_duplicate_rows(Y) and base.duplicate_rows(Y) == 3
    Z = X[:100].copy()
    Z[[3, 60]] = 0.0
    Z[60, 2] = -0.0  # -0.0 and +0.0 are equal, as in unique_rows
    assert base.may_have_duplicate_rows(Z) and base.duplicate_rows(Z) == 1
    assert not base.may_have_duplicate_rows(X[:1])


def test_lof_on_distinct_rows_skips_unique_rows_with_the_same_scores(monkeypatch):
    from fmb.detectors import pyod_adapter

    X = _hard(2500, 16, 22)
    calls = []
    real = pyod_adapter.unique_rows
    monkeypatch.setattr(pyod_adapter, "unique_rows", lambda A: calls.append(len(A)) or real(A))
    fast = make_detector("lof", ann_threshold=0).fit_score(X, seed=4)
    assert calls == []  # distinct rows on the approximate graph: no record sort
    monkeypatch.setattr(pyod_adapter, "may_have_duplicate_rows", lambda A: True)
    sorted_path = make_detector("lof", ann_threshold=0).fit_score(X, seed=4)
    assert calls == [len(X)] and np.array_equal(fast, sorted_path)  # the graph does not depend on row order
    exact = make_detector("lof").fit_score(X, seed=4)  # pyod's exact search still gets unique_rows' order
    assert calls == [len(X)] * 2 and np.isfinite(exact).all()


def test_lof_with_repeated_rows_still_merges_them_above_the_threshold():
    X = _hard(2500, 16, 23)
    X[100:130] = X[7]  # 31 copies of one row (more than n_neighbors=20): one score, LOF_DENSE_GROUP
    X[200] = X[8]
    from fmb.detectors.pyod_adapter import LOF_DENSE_GROUP

    s = make_detector("lof", ann_threshold=0).fit_score(X, seed=4)
    assert (s[[7, *range(100, 130)]] == LOF_DENSE_GROUP).all() and s[200] == s[8]
    U, inverse = base.unique_rows(X)
    expect = make_detector("lof", ann_threshold=0).fit_score(U, seed=4)[inverse]
    assert np.array_equal(s[200], expect[200]) and np.array_equal(s[:7], expect[:7])
