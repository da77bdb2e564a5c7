"""The k-neighbour graphs of knn and lof: exact formulas against pyod, NN-descent recall against exact search."""

import numpy as np
import pytest

from fmb.detectors import neighbours as nb
from fmb.detectors.base import standardise
from fmb.detectors.pyod_adapter import make_detector
from fmb.errors import UsageError

pytest.importorskip("faiss")


def _low_rank(n: int, d: int, seed: int) -> np.ndarray:
    """Embedding-like rows: a 8-d latent through a random map, plus noise."""
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) / 3) + 0.2 * rng.standard_normal((n, d))


@pytest.mark.parametrize("method", ["largest", "mean", "median"])
def test_knn_score_from_exact_graph_equals_pyod(method):
    X = _low_rank(300, 12, 1)
    dist, _ = nb.exact_knn(standardise(X), 7)
    want = make_detector("knn", n_neighbors=7, method=method).fit_score(X)
    np.testing.assert_allclose(nb.knn_scores(dist, method), want, rtol=1e-10)


def test_lof_score_from_exact_graph_equals_pyod():
    X = _low_rank(300, 12, 2)
    dist, idx = nb.exact_knn(standardise(X), 20)
    np.testing.assert_allclose(nb.lof_scores(dist, idx), make_detector("lof").fit_score(X), rtol=1e-10)


def test_ann_recall_at_k_against_exact_search():
    X = standardise(_low_rank(4000, 32, 3)).astype(np.float32)
    k = 20
    _, approx, info = nb.ann_knn(X, k)
    _, exact = nb.exact_knn(X, k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])
    assert recall >= 0.95, recall
    assert abs(info["recall_at_k"] - recall) < 0.03  # the sampled estimate (1,000 rows) tracks the full one
    assert not (approx == np.arange(len(X))[:, None]).any()  # a row is never its own neighbour


def test_ann_graph_is_deterministic():
    X = _low_rank(2500, 16, 4)
    a = make_detector("lof", ann_threshold=0).fit_score(X)
    b = make_detector("lof", ann_threshold=0).fit_score(X)
    assert np.array_equal(a, b)


def test_ann_scores_rank_like_exact_and_threshold_switches():
    X = _low_rank(2500, 16, 5)
    exact = make_detector("knn").fit_score(X)  # 2500 < ANN_THRESHOLD: pyod's exact search
    approx = make_detector("knn", ann_threshold=0).fit_score(X)
    assert make_detector("knn", ann_threshold=1500).uses_ann(1500)
    assert not make_detector("knn", ann_threshold=1501).uses_ann(1500)
    assert not make_detector("knn", ann_threshold=0, p=1).uses_ann(1500)  # Manhattan: exact only
    assert np.mean(np.isclose(exact, approx, rtol=1e-5)) >= 0.95
    top = set(np.argsort(-exact)[:125]) & set(np.argsort(-approx)[:125])
    assert len(top) >= 117


def test_drop_self_when_a_duplicate_comes_first():
    dist = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    idx = np.array([[1, 0, 2], [0, 2, 3]])  # row 0: self second; row 1: self absent -> drop the farthest
    d, i = nb._drop_self(dist, idx, 2)
    assert i.tolist() == [[1, 2], [0, 2]] and d.tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_ann_threshold_is_declared_and_checked():
    with pytest.raises(UsageError, match="ann_threshold"):
        make_detector("lof", ann_threshold=-1)
    with pytest.raises(UsageError, match="ann_threshold"):
        make_detector("iforest", ann_threshold=10)
