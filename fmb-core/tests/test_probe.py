"""Probes: formulas on known samples, a planted linear relation, and ``fmb probe`` end to end."""

import json

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import UsageError
from fmb.probes.regress import nmad, oof_predict, outlier_fraction, run_probes, scores
from fmb.testing.cli import fmb_run


def test_nmad_and_outliers_of_a_known_sample():
    z = np.zeros(5)
    pred = np.array([0.0, 0.1, -0.1, 0.2, 1.0])  # dz - median(dz) = dz - 0.1: |.| = 0.1 0 0.2 0.1 0.9
    assert nmad(z, pred) == pytest.approx(1.4826 * 0.1)
    assert outlier_fraction(z, pred) == pytest.approx(0.4)  # 0.2 and 1.0 exceed 0.15
    assert nmad(np.ones(3), np.array([1.0, 1.2, 1.4])) == pytest.approx(1.4826 * 0.2 / 2)


def test_scores_r2_and_rmse():
    y = np.array([1.0, 2.0, 3.0])
    s = scores("log_mstar", y, y + np.array([0.0, 0.0, 0.3]))
    assert s["rmse"] == pytest.approx(np.sqrt(0.03)) and s["r2"] == pytest.approx(1 - 0.09 / 2)
    assert s["nmad"] is None and scores("redshift", y, y)["nmad"] == 0.0


@pytest.mark.parametrize("reg, floor", [("ridge", 0.95), ("hgb", 0.6)])
def test_probe_recovers_a_planted_linear_relation(reg, floor):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = X @ np.array([1.0, -2.0, 0.5, 0, 0, 0]) + 0.05 * rng.normal(size=300)
    pred = oof_predict(X, y, reg, folds=3, seed=0)
    assert scores("log_sfr", y, pred)["r2"] > floor


def test_run_probes_adds_random_rows_that_do_worse():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    z = 0.6 + 0.15 * X[:, 0]
    t = pa.table(
        {"object_id": np.arange(120), "redshift": z, "image": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 4)}
    )
    rows = run_probes("m", t, ("ridge",), folds=3, seed=0)
    by = {r["model"]: r for r in rows}
    assert set(by) == {"m", "random"} and by["random"]["dim"] == 4
    assert by["random"]["r2"] < by["m"]["r2"]
    assert by["m"]["nmad"] is not None
    with pytest.raises(UsageError, match="none of the targets"):
        run_probes("m", t.drop(["redshift"]), ("ridge",))


def test_too_few_objects_is_a_clear_error():
    with pytest.raises(UsageError, match="too few"):
        oof_predict(np.ones((3, 2)), np.ones(3), "ridge", folds=5)


def test_cli_probe_run_dir_and_model(toy, tmp_path):
    r = fmb_run(tmp_path / "run", "--modality", "spectrum", detector="ecod", dataset="toy:size=60")
    r = CliRunner().invoke(
        cli, ["probe", str(tmp_path / "run"), "--regressor", "ridge", "--folds", "3", "--modality", "spectrum"]
    )
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "run" / "probe.json").read_text())["rows"]
    assert {(r["model"], r["target"]) for r in rows} >= {("baseline", "redshift"), ("random", "log_sfr")}
    r = CliRunner().invoke(
        cli,
        [
            "probe",
            "--model",
            "baseline",
            "--dataset",
            "toy:size=60",
            "--regressor",
            "ridge",
            "--folds",
            "3",
            "--no-random",
            "--modality",
            "image",
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert r.exit_code == 0, r.output and (tmp_path / "p" / "probe.csv").exists()
    r = CliRunner().invoke(cli, ["probe"])
    assert r.exit_code == 2 and "either RUN_DIR or --model" in r.output


def test_hgb_reduces_wide_features_with_pca_fitted_per_fold():
    from fmb.probes.regress import HGB_PCA_COMPONENTS, make_hgb

    wide = make_hgb(0, HGB_PCA_COMPONENTS + 1)
    assert [type(s).__name__ for _, s in wide.steps] == ["StandardScaler", "PCA", "HistGradientBoostingRegressor"]
    narrow = make_hgb(0, HGB_PCA_COMPONENTS)
    assert "PCA" not in [type(s).__name__ for _, s in narrow.steps]
    rng = np.random.default_rng(2)
    latent = rng.normal(size=(200, 3))  # a signal in the leading variance directions survives the PCA
    X = latent @ rng.normal(size=(3, 80)) + 0.1 * rng.normal(size=(200, 80))
    y = latent.sum(axis=1)
    assert scores("log_sfr", y, oof_predict(X, y, "hgb", folds=3, seed=0))["r2"] > 0.6


def test_hgb_stops_early_on_noise():
    # boosting a target that is pure noise: the held-out loss stops improving long before 100 trees
    from fmb.probes.regress import make_hgb

    rng = np.random.default_rng(5)
    pipe = make_hgb(0, 8).fit(rng.normal(size=(300, 8)), rng.normal(size=300))
    assert pipe[-1].n_iter_ < 50


def test_hgb_on_several_targets_equals_the_pipeline_per_target():
    # oof_predict shares each fold's z-score + PCA between targets: the predictions must equal the
    # whole scikit-learn pipeline fitted per fold and per target, computed here independently
    from sklearn.model_selection import KFold

    from fmb.probes.regress import make_hgb

    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 40)).astype(np.float32)
    Y = np.column_stack([X[:, 0] - X[:, 1], np.sin(X[:, 2]) + 0.3 * rng.normal(size=90)])
    got = oof_predict(X, Y, "hgb", folds=3, seed=1)
    for j in range(2):
        want = np.empty(90)
        for tr, te in KFold(3, shuffle=True, random_state=1).split(X):
            want[te] = make_hgb(1, 40).fit(X[tr], Y[tr, j]).predict(X[te])
        np.testing.assert_allclose(got[:, j], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(oof_predict(X, Y[:, 1], "hgb", folds=3, seed=1), got[:, 1])


@pytest.mark.parametrize("n, p", [(40, 6), (12, 30)])  # n > p (X'X) and n <= p (XX')
def test_ridge_loo_matches_ridgecv_and_brute_force_leave_one_out(n, p, monkeypatch):
    from sklearn.linear_model import Ridge, RidgeCV

    from fmb.probes import ridge as ridge_mod
    from fmb.probes.ridge import ALPHAS, ridge_loo

    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, p))
    X[:, 1] = 3.0  # a constant column and a duplicated one: rank-deficient, no tolerance needed
    X[:, 2] = X[:, 0]
    Y = np.column_stack([X[:, 0] + 0.05 * rng.normal(size=n), X[:, 3] + 2.0 * rng.normal(size=n), rng.normal(size=n)])
    T = rng.normal(size=(5, p))
    pred, alpha = ridge_loo(X, Y, T)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(alpha, ref.alpha_)
    np.testing.assert_allclose(pred, ref.predict(T), rtol=1e-8, atol=1e-9)
    monkeypatch.setattr(ridge_mod, "BLOCK", 7)  # rows taken in blocks (survey scale): same fit
    pred7, alpha7 = ridge_loo(X, Y, T)
    np.testing.assert_array_equal(alpha7, alpha)
    np.testing.assert_allclose(pred7, pred, rtol=1e-10, atol=1e-12)
    # the chosen alpha really has the least mean squared error over n explicit leave-one-out refits
    err = np.zeros((len(ALPHAS), 3))
    for k, a in enumerate(ALPHAS):
        for i in range(n):
            fit = Ridge(alpha=a).fit(np.delete(X, i, 0), np.delete(Y, i, 0))
            err[k] += (Y[i] - fit.predict(X[i : i + 1])[0]) ** 2
    np.testing.assert_array_equal(alpha, ALPHAS[np.argmin(err, axis=0)])
    with pytest.raises(ValueError, match="positive"):
        ridge_loo(X, Y, T, alphas=np.array([0.0, 1.0]))


def test_ridge_on_several_targets_equals_separate_fits():
    # one multi-target RidgeCV per fold must keep each target's own alpha: compare against
    # per-target fits computed independently with scikit-learn on the same seeded folds
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 5))
    # very different noise levels -> very different best alphas per target
    Y = np.column_stack([X[:, 0] + 0.01 * rng.normal(size=90), 0.1 * X[:, 1] + 3.0 * rng.normal(size=90)])
    got = oof_predict(X, Y, "ridge", folds=3, seed=0)
    for j in range(2):
        want = np.empty(90)
        for tr, te in KFold(3, shuffle=True, random_state=0).split(X):
            m = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15))).fit(X[tr], Y[tr, j])
            want[te] = m.predict(X[te])
        np.testing.assert_allclose(got[:, j], want, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(oof_predict(X, Y[:, j], "ridge", folds=3, seed=0), want, rtol=1e-8, atol=1e-10)


def test_probe_rows_with_targets_missing_on_different_objects():
    # targets with different NaN objects are fitted on their own objects (own folds), as before grouping
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    z = 0.5 + 0.1 * X[:, 0]
    m = 10.0 + X[:, 1]
    m[:7] = np.nan
    from fmb.probes.regress import probe_features

    rows = probe_features("f", X, {"redshift": z, "log_mstar": m}, ("ridge",), folds=3, seed=0)
    by = {r["target"]: r for r in rows}
    assert by["redshift"]["n"] == 80 and by["log_mstar"]["n"] == 73
    want = scores("log_mstar", m[7:], oof_predict(X[7:], m[7:], "ridge", folds=3, seed=0))
    assert by["log_mstar"]["r2"] == pytest.approx(want["r2"])
    assert by["redshift"]["r2"] == pytest.approx(scores("redshift", z, oof_predict(X, z, "ridge", 3, 0))["r2"])


def test_fit_threads_default_one_and_env_override(monkeypatch):
    from fmb.probes.regress import fit_threads

    monkeypatch.delenv("FMB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert fit_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert fit_threads() == 2
    monkeypatch.setenv("FMB_THREADS", "3")
    assert fit_threads() == 3
    monkeypatch.setenv("FMB_THREADS", "zero")
    with pytest.raises(UsageError, match="FMB_THREADS"):
        fit_threads()


def test_run_probes_same_numbers_whatever_the_row_order():
    # folds, the random control and hgb's held-out split follow object_id, not the table's row order
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    ids = rng.permutation(1000)[:60]
    t = pa.table(
        {
            "object_id": ids,
            "redshift": 0.5 + 0.1 * X[:, 0],
            "log_sfr": X[:, 1] + 0.1 * rng.normal(size=60),
            "image": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 5),
        }
    )
    a = run_probes("m", t, folds=3, seed=0)
    b = run_probes("m", t.take(pa.array(rng.permutation(60))), folds=3, seed=0)
    assert len(a) == 8 and a == b
    with pytest.raises(UsageError, match="object_id"):
        run_probes("m", t.drop(["object_id"]), folds=3)
