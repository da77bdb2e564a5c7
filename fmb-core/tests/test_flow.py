"""The ``nf`` detector: planted outliers rank on top, scoring is out-of-fold, bad input is one line."""

import numpy as np
import pytest

from fmb.detectors import flow
from fmb.detectors.flow import FlowDetector, Whitener, fold_assignment, step_budget
from fmb.errors import DetectorError, UsageError
from fmb.testing.cli import fmb_run

TINY = {"folds": 3, "epochs": 15, "hidden": 16, "transforms": 2, "patience": 5, "batch_size": 64}


def gaussian_with_outliers(n=150, d=6, n_out=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:n_out] += 6.0
    return X


def test_nf_ranks_planted_outliers_on_top():
    s = FlowDetector(**TINY).fit_score(gaussian_with_outliers(), seed=0)
    assert set(np.argsort(-s)[:5]) == set(range(5))


def test_nf_is_seeded():
    X = gaussian_with_outliers(n=90)
    a, b = (FlowDetector(**TINY).fit_score(X, seed=1) for _ in range(2))
    assert np.array_equal(a, b)


def test_no_object_is_scored_by_a_flow_trained_on_it(monkeypatch):
    """A spy on fit_fold records each fold's raw training rows; FoldModel.score checks the rows it
    scores are none of them."""
    X = gaussian_with_outliers(n=60, d=4)
    fitted = []
    real_fit, real_score = flow.fit_fold, flow.FoldModel.score

    def spy_fit(X_all, rows, cfg, seed):
        model = real_fit(X_all, rows, cfg, seed)
        model.spy_train = {r.tobytes() for r in X_all[rows]}
        fitted.append(model)
        return model

    scored = []

    def spy_score(self, X_all, rows):
        got = {r.tobytes() for r in X_all[rows]}
        assert not got & self.spy_train
        scored.append(got)
        return real_score(self, X_all, rows)

    monkeypatch.setattr(flow, "fit_fold", spy_fit)
    monkeypatch.setattr(flow.FoldModel, "score", spy_score)
    det = FlowDetector(**{**TINY, "epochs": 2})
    det.fit_score(X, seed=0)
    assert len(fitted) == 3 and set().union(*scored) == {r.tobytes() for r in X}
    folds = det.folds_
    assert sorted(np.bincount(folds).tolist()) == [20, 20, 20]


def test_fold_assignment_is_balanced_and_seeded():
    a = fold_assignment(11, 5, seed=3)
    assert np.array_equal(a, fold_assignment(11, 5, seed=3)) and sorted(np.bincount(a)) == [2, 2, 2, 2, 3]


def test_whitener_matches_sklearn_pca_whitening_and_clips():
    """Whitener = scikit-learn's PCA(whiten=True) on the fitting rows (up to the sign of each
    direction), computed here independently; clipping bounds a far row."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 8)) @ rng.normal(size=(8, 8)) + 3.0
    rows = np.arange(10, 80)
    w = Whitener.fit(X, rows, n_components=5, clip=50.0)
    ref = PCA(5, whiten=True, svd_solver="full").fit(X[rows])
    Z, R = w.transform(X), ref.transform(X)
    np.testing.assert_allclose(np.abs(Z), np.abs(R), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.cov(w.transform(X, rows), rowvar=False), np.eye(5), atol=1e-4)
    far = Whitener.fit(X, rows, n_components=5, clip=2.0).transform(np.vstack([X, 1e3 * np.ones((1, 8))]))
    assert far.shape == (81, 5) and np.abs(far).max() <= 2.0


def test_whitener_keeps_only_the_directions_the_rows_span():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(50, 3))
    X = np.hstack([A, A[:, :1] * 2.0, A[:, 1:2] - A[:, 2:3]])  # rank 3 in 5 columns
    w = Whitener.fit(X, np.arange(50), n_components=100, clip=8.0)
    assert w.W.shape == (5, 3)
    assert Whitener.fit(X, np.arange(3), n_components=100, clip=8.0).W.shape == (5, 2)  # at most n - 1
    with pytest.raises(DetectorError, match="all identical"):
        Whitener.fit(np.ones((6, 2)), np.arange(6), 4, 8.0)


def test_chunked_whitening_and_scoring_equal_one_pass(monkeypatch):
    """Small chunks (memory-bounded gathers) give the same whitening and scores as one chunk."""
    X = gaussian_with_outliers(n=90, d=5).astype(np.float32)
    whole = FlowDetector(**TINY).fit_score(X, seed=2)
    w_whole = Whitener.fit(X, np.arange(3, 90), 4, 8.0)
    monkeypatch.setattr(flow, "CHUNK", 7)
    w_small = Whitener.fit(X, np.arange(3, 90), 4, 8.0)
    np.testing.assert_allclose(w_small.W, w_whole.W, rtol=1e-8)
    np.testing.assert_allclose(FlowDetector(**TINY).fit_score(X, seed=2), whole, rtol=1e-5, atol=1e-5)


def test_each_fold_is_centred_on_its_validation_median():
    """Each fold's -log p is centred on the median over that flow's own validation rows (held out
    from its training and from the fold it scores), so every fold's out-of-fold scores have a median
    near 0, where the raw -log p of 2-d normal data sits near log(2 pi) + 1 = 2.84 nats."""
    X = np.random.default_rng(5).normal(size=(300, 2))
    det = FlowDetector(**{**TINY, "epochs": 5, "val_fraction": 0.4})
    s = det.fit_score(X, seed=0)
    for f in range(3):
        assert abs(np.median(s[det.folds_ == f])) < 0.15
        assert det.history_[f]["offset"] > 2.0


def test_validation_and_fitting_rows_are_capped(monkeypatch):
    monkeypatch.setattr(flow, "VAL_MAX", 9)
    det = FlowDetector(**{**TINY, "epochs": 1})
    det.fit_score(gaussian_with_outliers(n=300, d=3), seed=0)
    assert [h["n_val"] for h in det.history_] == [9, 9, 9]
    assert [h["n_fit"] for h in det.history_] == [191, 191, 191]
    det = FlowDetector(**{**TINY, "epochs": 1, "max_steps": 3, "batch_size": 20})
    det.fit_score(gaussian_with_outliers(n=300, d=3), seed=0)
    assert [h["n_fit"] for h in det.history_] == [60, 60, 60]  # what 3 steps of 20 rows can visit


def test_step_budget_scales_with_rows_up_to_max_steps():
    cfg = {**flow.DEFAULTS, "batch_size": 256, "epochs": 200, "max_steps": 700}
    assert step_budget(1200, cfg) == (256, 5, 700)  # 200 passes would be 1,000 steps
    assert step_budget(300, cfg) == (256, 2, 400)  # 200 passes of 2 steps
    assert step_budget(100, cfg) == (100, 1, 200)  # batch never above the rows
    assert step_budget(10**6, cfg)[2] == 700


def test_nf_saves_flows(tmp_path):
    FlowDetector(**{**TINY, "epochs": 1, "save_dir": str(tmp_path / "flows")}).fit_score(
        gaussian_with_outliers(n=40, d=3), seed=0
    )
    names = sorted(p.name for p in (tmp_path / "flows").iterdir())
    assert names == ["fold-0.pt", "fold-1.pt", "fold-2.pt", "folds.json"]


@pytest.mark.parametrize(
    "X, msg",
    [
        (np.ones((40, 3)), "constant"),
        (np.zeros((5, 3)), "too few"),
        (np.ones((1, 3)), "at least 2"),
    ],
)
def test_nf_bad_input(X, msg):
    with pytest.raises(DetectorError, match=msg):
        FlowDetector(**TINY).fit_score(X)


@pytest.mark.parametrize(
    "params, msg",
    [
        ({"flow": "glow"}, "flow='glow' must be one of maf, nsf"),
        ({"folds": 1}, "folds"),
        ({"bogus": 1}, "unknown parameter"),
        ({"n_components": 0}, r"n_components=0 must be an integer >= 1"),
        ({"epochs": 0}, "epochs=0"),
        ({"hidden": -5}, "hidden=-5"),
        ({"lr": -1}, r"lr=-1 must be a number > 0"),
        ({"epochs": True}, "epochs=True"),
        ({"epochs": 2.5}, "epochs=2.5"),
    ],
)
def test_nf_bad_params(params, msg):
    with pytest.raises(UsageError, match=msg):
        FlowDetector(**params)


def test_nsf_runs():
    s = FlowDetector(**{**TINY, "flow": "nsf", "epochs": 2}).fit_score(gaussian_with_outliers(n=45, d=3))
    assert s.shape == (45,) and np.isfinite(s).all()


def test_fmb_run_with_nf(toy, tmp_path):
    import json

    fmb_run(tmp_path, "--modality", "image", detector="nf:folds=3,epochs=3,hidden=8,transforms=1,n_components=8")
    m = json.loads((tmp_path / "results.json").read_text())["modalities"]["image"]["metrics"]
    assert m["auroc"] > 0.6


def test_early_stopping_ignores_one_extreme_validation_row():
    """The stop criterion is the median validation -log p: replacing a validation row that lies
    above the median by an extreme one leaves the whole training history unchanged (a mean would
    be dominated by it)."""
    rng = np.random.default_rng(3)
    Ztr = rng.standard_normal((200, 3)).astype(np.float32)
    Zval = rng.standard_normal((41, 3)).astype(np.float32)
    Zval[0] = 3.5  # far out in every column: above the median -log p at every check
    extreme = Zval.copy()
    extreme[0] = 1e3
    cfg = {**flow.DEFAULTS, **TINY, "max_steps": 60, "eval_every": 4, "patience": 3, "device": "cpu"}
    _, a = flow.train_flow(Ztr, Zval, cfg, seed=0)
    _, b = flow.train_flow(Ztr, extreme, cfg, seed=0)
    assert a == b
    assert 0 < a["steps_run"] <= 60


def test_step_budget_caps_training():
    rng = np.random.default_rng(4)
    Ztr = rng.standard_normal((256, 2)).astype(np.float32)
    cfg = {
        **flow.DEFAULTS,
        **TINY,
        "max_steps": 7,
        "eval_every": 100,
        "patience": 50,
        "batch_size": 16,
        "device": "cpu",
    }
    _, h = flow.train_flow(Ztr, Ztr[:20], cfg, seed=0)
    assert h["steps_run"] == 7 and h["steps_per_epoch"] == 16
    _, h = flow.train_flow(Ztr, Ztr[:20], {**cfg, "epochs": 1, "max_steps": 1000}, seed=0)
    assert h["steps_run"] == 16  # one pass over the 256 training rows at batch 16
