"""The ``mahalanobis`` detector: distance to the mean under a shrunk covariance (higher = more anomalous)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fmb.detectors.base import Detector
from fmb.errors import DetectorError


class MahalanobisDetector(Detector):
    """``shrinkage`` in [0, 1] pulls the covariance toward a multiple of the identity."""

    name = "mahalanobis"

    def __init__(self, shrinkage: float = 0.1, **params: Any) -> None:
        if params:
            raise DetectorError(
                f"detector 'mahalanobis': unknown parameter(s) {', '.join(sorted(params))} (valid: shrinkage)"
            )
        shrinkage = float(shrinkage)
        if not 0.0 <= shrinkage <= 1.0:
            raise DetectorError(f"detector 'mahalanobis': shrinkage must be in [0, 1], got {shrinkage}")
        super().__init__(shrinkage=shrinkage)

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        X = self.check_input(X).astype(np.float64)
        a = self.params["shrinkage"]
        d = X - X.mean(axis=0)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        target = np.trace(cov) / len(cov) or 1.0
        cov = (1 - a) * cov + a * target * np.eye(len(cov)) + 1e-12 * target * np.eye(len(cov))
        return np.sqrt(np.einsum("ij,ij->i", d, np.linalg.solve(cov, d.T).T))


def make_detector(**params: Any) -> MahalanobisDetector:
    """Loader named by the spec."""
    return MahalanobisDetector(**params)
