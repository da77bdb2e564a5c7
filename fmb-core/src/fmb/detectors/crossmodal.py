"""``crossmodal``: how badly each modality of an object predicts the other, fitted out of fold.

For the N objects that have both embeddings, the image embedding is standardised and reduced to ``pca``
principal components (likewise the spectrum); then, in k seeded folds, a regressor fitted on the other folds
predicts each object's spectrum components from its image components and its image components from its
spectrum components (scikit-learn: ``KNeighborsRegressor`` (default, distance-weighted, ``neighbors``) or
``RidgeCV``). The residuals, divided per column by their robust spread (1.4826 x median |residual|), form an
``[N, 2 * pca]`` residual embedding; the score is its mean square (``base=norm``, default) or a pyod
detector's score of it (``base=<pyod name>``, e.g. ``knn``). The PCA and the scaling are fitted on the scored
objects without labels (unsupervised); the regression never sees the object it predicts. Nothing requires a
shared embedding space (unlike ``mismatch``), so it serves any model, the baselines included.

Components (own metrics in results.json): ``image_to_spectrum`` and ``spectrum_to_image`` mean squares.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmb.detectors.base import standardise
from fmb.detectors.mismatch import MultiInputDetector
from fmb.errors import DetectorError, UsageError
from fmb.paramschema import Param, check_params, schema

REGRESSORS = ("knn", "ridge")

#: the declared parameters of ``crossmodal`` (checked by :func:`make_detector` before any work)
SCHEMA = schema(
    Param("base", ("str",), "norm", doc="norm: mean squared residual; else a pyod detector scoring the residuals"),
    Param("regressor", ("str",), "knn", choices=REGRESSORS, doc="kNN (distance-weighted) or RidgeCV regression"),
    Param("folds", ("int",), 5, low=2, doc="out-of-fold splits of the regression"),
    Param("pca", ("int",), 16, low=1, doc="PCA components per modality"),
    Param("neighbors", ("int",), 15, low=1, doc="neighbours of the kNN regressor"),
    Param("base_params", ("dict", "none"), None, doc="the base detector's parameters"),
)


def _pca(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    Z = standardise(np.asarray(X, np.float64))
    k = max(1, min(k, Z.shape[1], Z.shape[0] - 1))
    return PCA(n_components=k, svd_solver="full").fit_transform(Z)


def _regressor(kind: str, neighbors: int):
    if kind == "knn":
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=neighbors, weights="distance")
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-3, 3, 13))


def oof_residuals(A: np.ndarray, B: np.ndarray, folds: np.ndarray, kind: str, neighbors: int) -> np.ndarray:
    """Out-of-fold residuals ``B - f(A)`` [N, dB], ``f`` fitted on the other folds for each fold."""
    R = np.empty_like(B)
    for f in np.unique(folds):
        test = folds == f
        R[test] = B[test] - _regressor(kind, neighbors).fit(A[~test], B[~test]).predict(A[test])
    return R


def _robust_scale(R: np.ndarray) -> np.ndarray:
    s = 1.4826 * np.median(np.abs(R - np.median(R, axis=0)), axis=0)
    return R / np.where(s > 0, s, 1.0)


class CrossModalDetector(MultiInputDetector):
    """See the module docstring."""

    name = "crossmodal"

    def __init__(
        self,
        base: str = "norm",
        regressor: str = "knn",
        folds: int = 5,
        pca: int = 16,
        neighbors: int = 15,
        base_params: dict | None = None,
    ) -> None:
        p = check_params(
            "detector 'crossmodal'",
            SCHEMA,
            {"base": base, "regressor": regressor, "folds": folds, "pca": pca, "neighbors": neighbors},
        )
        base, regressor, folds, pca, neighbors = (p[k] for k in ("base", "regressor", "folds", "pca", "neighbors"))
        super().__init__(
            base=str(base),
            regressor=regressor,
            folds=int(folds),
            pca=int(pca),
            neighbors=int(neighbors),
            base_params=dict(base_params or {}),
        )
        # ``base`` exists only when a base detector scores the residuals (run.py's duplicate-row warning names
        # ``detector.base`` when present, else the detector itself)
        if self.params["base"] != "norm":  # a bad base name fails here, before any work
            from fmb.plugins import UnknownNameError, registry

            try:
                self.base = registry().detector(self.params["base"]).load()(**self.params["base_params"])
            except UnknownNameError as exc:
                raise UsageError(f"detector 'crossmodal': parameter base={base!r}: {exc}") from None
            if isinstance(self.base, MultiInputDetector):
                raise UsageError(
                    f"detector 'crossmodal': base detector {base!r} must score one embedding at a "
                    "time (e.g. knn, iforest)"
                )

    def fit_score_inputs(self, Xs: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
        Xs = self.check_inputs(Xs)
        n, k = len(Xs["image"]), self.params["folds"]
        if n < max(4 * k, self.params["neighbors"] * k // (k - 1) + 2):
            raise DetectorError(
                f"detector 'crossmodal': {n} objects are too few for {k}-fold regression "
                f"with {self.params['neighbors']} neighbours"
            )
        A, B = _pca(Xs["image"], self.params["pca"]), _pca(Xs["spectrum"], self.params["pca"])
        folds = np.random.default_rng(seed).permutation(np.arange(n) % k)
        kind, nn = self.params["regressor"], self.params["neighbors"]
        Rb = _robust_scale(oof_residuals(A, B, folds, kind, nn))
        Ra = _robust_scale(oof_residuals(B, A, folds, kind, nn))
        R = np.hstack([Rb, Ra])
        self.residuals_ = R
        self.components_ = {"image_to_spectrum": (Rb**2).mean(axis=1), "spectrum_to_image": (Ra**2).mean(axis=1)}
        self.details_ = {"regressor": kind, "pca": [A.shape[1], B.shape[1]], "folds": k, "base": self.params["base"]}
        if getattr(self, "base", None) is None:
            return (R**2).mean(axis=1)
        return np.asarray(self.base.fit_score(R.astype(np.float32), seed=seed), np.float64)


def make_detector(**params: Any) -> CrossModalDetector:
    """Loader of the ``crossmodal`` detector spec; parameters are checked against :data:`SCHEMA`."""
    return CrossModalDetector(**check_params("detector 'crossmodal'", SCHEMA, params))
