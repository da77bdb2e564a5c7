"""The pyod adapter: planted outliers rank on top; parameters are checked; seeds are honoured."""

import numpy as np
import pytest

from fmb.detectors.pyod_adapter import make_detector
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.errors import DetectorError, UsageError
from fmb.plugins import registry


def planted(n=300, d=8, k=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:k] += 8.0  # far from the bulk in every dimension
    return X, k


@pytest.mark.parametrize("name", ["iforest", "lof", "knn", "ecod", "copod", "hbos", "pca", "ocsvm"])
def test_planted_outliers_rank_on_top(name):
    X, k = planted()
    det = registry().detector(name).load()()
    scores = det.fit_score(X, seed=0)
    assert scores.shape == (len(X),)
    assert set(np.argsort(-scores)[:k]) == set(range(k))


def test_every_catalogued_detector_is_registered():
    assert set(PYOD_DETECTORS) <= set(registry().names("detector"))


def test_parameters_pass_through_and_seed_is_deterministic():
    X, _ = planted()
    a = make_detector("iforest", n_estimators=50).fit_score(X, seed=3)
    b = make_detector("iforest", n_estimators=50).fit_score(X, seed=3)
    c = make_detector("iforest", n_estimators=50).fit_score(X, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(UsageError, match=r"detector 'knn': unknown parameter\(s\) n_neighbours .*n_neighbors"):
        make_detector("knn", n_neighbours=3)


def test_too_many_neighbours_is_a_clear_error():
    with pytest.raises(DetectorError, match="n_neighbors=50 must be smaller than the number of objects"):
        make_detector("knn", n_neighbors=50).fit_score(np.zeros((10, 2)))


def test_non_finite_input_names_the_row():
    X, _ = planted()
    X[7, 2] = np.nan
    with pytest.raises(DetectorError, match="row 7"):
        make_detector("ecod").fit_score(X)


def test_bad_value_type_is_refused_when_made():
    with pytest.raises(UsageError, match=r"iforest.*n_estimators='many' must be an integer >= 1"):
        make_detector("iforest", n_estimators="many")


def test_standardise_keeps_dtype_and_zeroes_constant_columns():
    from fmb.detectors.base import standardise

    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=np.float32)
    Z = standardise(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_array_equal(Z[:, 1], 0.0)
