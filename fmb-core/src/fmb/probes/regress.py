"""Probes: predict redshift, log_mstar and log_sfr from embeddings, k-fold out-of-fold.

Redshift scores (dz = z_pred - z_true, z = z_true):

* NMAD = 1.4826 * median_i( |dz_i - median(dz)| / (1 + z_i) )
* catastrophic-outlier fraction = fraction of objects with |dz| / (1 + z) > 0.15

Method, per shuffled k-fold split (seeded), everything fitted on the training fold only (nothing
leaks into the held-out fold), the targets with the same objects sharing each fold's work:

* ``ridge``: z-score, then ridge with an unpenalised intercept and, per target, the alpha of
  :data:`fmb.probes.ridge.ALPHAS` with the least leave-one-out squared error: the estimator of
  scikit-learn's ``RidgeCV(alpha_per_target=True)``, solved from one eigendecomposition per fold for
  the whole grid and all targets (:mod:`fmb.probes.ridge` says why and checks it against RidgeCV).
* ``hgb``: z-score, PCA to at most :data:`HGB_PCA_COMPONENTS` components (histogram boosting's cost
  grows with the features; raw 1,024-d embeddings made one fit take minutes), fitted once per fold
  for all targets, then ``HistGradientBoostingRegressor`` per target with early stopping on a seeded
  10% of the training fold (:func:`make_hgb`).

Threads: every fit runs inside :func:`fmb.threads.limited` with :func:`fit_threads` threads: one
unless ``FMB_THREADS`` (``fmb --threads``) or ``OMP_NUM_THREADS`` says otherwise, because these fits are small and
OpenMP/BLAS pools of two threads on the loaded 2-core machine made them 5-25x slower (a barrier
per tree node waits on a descheduled thread; see bench/bench_probe.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import UsageError
from fmb.threads import ENV as THREADS_ENV
from fmb.threads import OMP_ENV, limited, n_threads

TARGETS = C.PHYSICAL
REGRESSORS = ("ridge", "hgb")
OUTLIER_DZ = 0.15
#: ``hgb`` sees at most this many principal components of the (standardised) features
HGB_PCA_COMPONENTS = 32


def nmad(z_true: np.ndarray, z_pred: np.ndarray) -> float:
    """1.4826 * median(|dz - median(dz)| / (1 + z_true)), dz = z_pred - z_true."""
    z, dz = np.asarray(z_true, np.float64), np.asarray(z_pred, np.float64) - np.asarray(z_true, np.float64)
    return float(1.4826 * np.median(np.abs(dz - np.median(dz)) / (1.0 + z)))


def outlier_fraction(z_true: np.ndarray, z_pred: np.ndarray, threshold: float = OUTLIER_DZ) -> float:
    """Fraction with |z_pred - z_true| / (1 + z_true) > threshold."""
    z = np.asarray(z_true, np.float64)
    return float(np.mean(np.abs(np.asarray(z_pred, np.float64) - z) / (1.0 + z) > threshold))


def fit_threads() -> int:
    """Threads for each probe fit: :func:`fmb.threads.n_threads` when ``$FMB_THREADS`` or ``$OMP_NUM_THREADS`` is set
    (UsageError on a bad value), else 1."""
    return n_threads() if any(os.environ.get(v, "").strip() for v in (THREADS_ENV, OMP_ENV)) else 1


def make_hgb(seed: int, n_features: int | None = None) -> Any:
    """The ``hgb`` probe as a scikit-learn pipeline: z-score, PCA to at most :data:`HGB_PCA_COMPONENTS`
    components when ``n_features`` is wider (randomized solver, seeded), then
    ``HistGradientBoostingRegressor(early_stopping=True)``: 10% of the training objects (a seeded
    split) are held out and boosting stops when their loss has not improved for 10 iterations
    (at most 100). scikit-learn turns this on by itself from 10,000 training objects; ``fmb probe``
    uses it at every size, so the method does not change with the survey's size (and small runs stop
    early instead of fitting 100 trees to noise)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[Any] = [StandardScaler()]
    if n_features is not None and n_features > HGB_PCA_COMPONENTS:
        steps.append(PCA(HGB_PCA_COMPONENTS, svd_solver="randomized", random_state=seed))
    return make_pipeline(*steps, HistGradientBoostingRegressor(early_stopping=True, random_state=seed))


def oof_predict(X: np.ndarray, y: np.ndarray, regressor: str, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of ``y`` from ``X`` (n, p) (shuffled k-fold, seeded); ``y`` is (n,) or
    (n, targets), each column predicted as by its own call. Per fold, on the training objects only:
    the z-score (and for ``hgb`` the PCA) is fitted once and shared by every target; ``ridge`` then
    solves the whole alpha grid for every target from one decomposition (:func:`fmb.probes.ridge.ridge_loo`),
    ``hgb`` fits one booster per target. Raises UsageError on an unknown regressor or too few objects."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    from fmb.probes.ridge import ridge_loo

    if regressor not in REGRESSORS:
        raise UsageError(f"probe: unknown regressor {regressor!r} (expected one of {', '.join(REGRESSORS)})")
    if len(y) < 2 * folds:
        raise UsageError(f"probe: {len(y)} objects are too few for {folds}-fold cross-validation")
    Y = np.asarray(y, np.float64).reshape(len(y), -1)
    pred = np.empty(Y.shape)
    with limited(fit_threads()):
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
            if regressor == "ridge":
                sc = StandardScaler().fit(X[train])
                pred[test] = ridge_loo(sc.transform(X[train]), Y[train], sc.transform(X[test]))[0]
                continue
            pipe = make_hgb(seed, X.shape[1])
            prep, booster = pipe[:-1], pipe[-1]
            Z, Zt = prep.fit_transform(X[train]), prep.transform(X[test])
            for j in range(Y.shape[1]):
                pred[test, j] = clone(booster).fit(Z, Y[train, j]).predict(Zt)
    return pred.reshape(np.shape(y))


def scores(target: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """R^2, RMSE and, for redshift, NMAD and the outlier fraction."""
    resid = pred - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    out: dict[str, float | None] = {
        "r2": 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else None,
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "nmad": None,
        "outlier_fraction": None,
    }
    if target == "redshift":
        out["nmad"], out["outlier_fraction"] = nmad(y, pred), outlier_fraction(y, pred)
    return out


def probe_features(
    name: str,
    X: np.ndarray,
    labels: dict[str, np.ndarray],
    regressors: tuple[str, ...],
    folds: int,
    seed: int,
    advance: Callable[[int], None] = lambda n: None,
) -> list[dict[str, Any]]:
    """One row per target x regressor for one feature matrix (rows with NaNs are skipped); the targets
    with the same objects are fitted together (:func:`oof_predict`), and ``advance(k)`` is called with
    the number of target x regressor rows each fit (or skip) completes (a progress bar)."""
    rows = []
    finite = np.isfinite(X).all(axis=1)
    masks = {t: finite & np.isfinite(y) for t, y in labels.items()}
    # the targets with the same objects share folds, z-score, PCA and ridge's decomposition
    groups: dict[bytes, list[str]] = {}
    for t, ok in masks.items():
        if ok.sum() >= 2 * folds:
            groups.setdefault(np.packbits(ok).tobytes(), []).append(t)
        else:
            advance(len(regressors))
    preds: dict[tuple[str, str], np.ndarray] = {}
    for ts in groups.values():
        ok = masks[ts[0]]
        Y = np.column_stack([labels[t][ok] for t in ts])
        for reg in regressors:
            P = oof_predict(X[ok], Y, reg, folds, seed)
            preds.update({(t, reg): P[:, i] for i, t in enumerate(ts)})
            advance(len(ts))
    for target, y in labels.items():
        ok = masks[target]
        for reg in regressors:
            if (target, reg) not in preds:
                continue
            rows.append(
                {
                    "features": name,
                    "dim": int(X.shape[1]),
                    "target": target,
                    "regressor": reg,
                    "n": int(ok.sum()),
                    **scores(target, y[ok], preds[target, reg]),
                }
            )
    return rows


def labels_of(table: pa.Table) -> dict[str, np.ndarray]:
    """The physical targets present in an embedding table, as float arrays."""
    out = {
        t: table.column(t).to_numpy(zero_copy_only=False).astype(np.float64) for t in TARGETS if t in table.column_names
    }
    if not out:
        raise UsageError(f"probe: the data set has none of the targets {', '.join(TARGETS)}")
    return out


def outputs_of(table: pa.Table) -> list[str]:
    return [o for o in ("image", "spectrum", "joint") if o in table.column_names]


def run_probes(
    model: str,
    table: pa.Table,
    regressors: tuple[str, ...] = REGRESSORS,
    folds: int = 5,
    seed: int = 0,
    modality: str | None = None,
    baseline: pa.Table | None = None,
    random_rows: bool = True,
    reporter: Any = None,
) -> list[dict[str, Any]]:
    """Rows for each output of ``model``, then random Gaussian features (same dimension as the model's
    widest probed output, seeded) and the baseline model, all on the model's objects. ``reporter``
    (:class:`fmb.reporting.Reporter`) shows a progress bar over the fits. The objects are put in
    ``object_id`` order first, so the folds, the random features and every number are the same
    whatever the order of the table's rows (UsageError when the table has no ``object_id``)."""
    import pyarrow.compute as pc

    from fmb.reporting import Reporter

    if C.OBJECT_ID not in table.column_names:
        raise UsageError(f"probe: the embedding table of model {model!r} has no {C.OBJECT_ID} column")
    table = table.take(pc.sort_indices(table, sort_keys=[(C.OBJECT_ID, "ascending")]))
    outs = [o for o in outputs_of(table) if modality in (None, o)]
    if not outs:
        raise UsageError(f"probe: model {model!r} has no {modality or 'embedding'} output in this run")
    labels = labels_of(table)
    base_outs = [o for o in outputs_of(baseline) if modality in (None, o)] if baseline is not None else []
    n_sets = len(outs) + bool(random_rows) + len(base_outs)
    with (reporter or Reporter(quiet=True)).progress("probe fits", n_sets * len(labels) * len(regressors)) as adv:
        return _probe_rows(model, table, regressors, folds, seed, outs, labels, baseline, base_outs, random_rows, adv)


def _probe_rows(
    model, table, regressors, folds, seed, outs, labels, baseline, base_outs, random_rows, adv
) -> list[dict[str, Any]]:
    rows = []
    for o in outs:
        rows += [
            {"model": model, "output": o, **r}
            for r in probe_features(f"{model}/{o}", C.column_array(table, o), labels, regressors, folds, seed, adv)
        ]
    if random_rows:
        dim = max(C.column_array(table, o).shape[1] for o in outs)
        R = np.random.default_rng(seed).standard_normal((table.num_rows, dim)).astype(np.float32)
        rows += [
            {"model": "random", "output": f"gaussian{dim}", **r}
            for r in probe_features("random", R, labels, regressors, folds, seed, adv)
        ]
    if baseline is not None:
        ids = table.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
        bids = baseline.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
        pos = {v: i for i, v in enumerate(bids.tolist())}
        keep = [pos[v] for v in ids.tolist() if v in pos]
        b = baseline.take(pa.array(keep, pa.int64()))
        mask = np.isin(ids, bids)
        sub = {t: y[mask] for t, y in labels.items()}
        for o in base_outs:
            rows += [
                {"model": "baseline", "output": o, **r}
                for r in probe_features(f"baseline/{o}", C.column_array(b, o), sub, regressors, folds, seed, adv)
            ]
    return rows
