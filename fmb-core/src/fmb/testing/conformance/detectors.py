"""Detector conformance: :class:`DetectorHarness` makes a registered detector and runs the detector checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmb.testing.conformance.common import (
    Harness,
    _registry,
    _spec,
)


def planted_outliers(n: int = 300, dim: int = 8, n_out: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A correlated Gaussian cloud with ``n_out`` rows pushed far out; returns ``X`` and the outlier mask."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.eye(dim)
    X = rng.normal(size=(n, dim)) @ A
    idx = rng.choice(n, n_out, replace=False)
    direction = rng.normal(size=(n_out, dim))
    X[idx] += 8.0 * direction / np.linalg.norm(direction, axis=1, keepdims=True) * X.std()
    is_out = np.zeros(n, bool)
    is_out[idx] = True
    return X.astype(np.float32), is_out


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half)."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    pos = labels.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass
class DetectorHarness(Harness):
    """Makes a registered detector and runs the detector checks on it."""

    kind = "detector"

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    min_auroc: float = 0.95

    def make(self) -> Any:
        from fmb.detectors.base import Detector

        _spec("detector", self.name)
        det = _registry().make_detector(self.name, self.params)
        assert isinstance(det, Detector), f"detector {self.name!r}: loader returned {type(det).__name__}"
        return det

    def scores(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        s = np.asarray(self.make().fit_score(X, seed=seed))
        where = f"detector {self.name!r}"
        assert s.shape == (X.shape[0],), f"{where}: {s.shape} scores for {X.shape[0]} objects"
        assert np.isfinite(s).all(), f"{where}: scores are not all finite"
        return s

    def check_planted_outliers(self) -> None:
        X, is_out = planted_outliers()
        a = auroc(self.scores(X), is_out)
        assert a >= self.min_auroc, (
            f"detector {self.name!r}: planted outliers score AUROC {a:.3f} < "
            f"{self.min_auroc} (are higher scores more anomalous?)"
        )

    def check_deterministic(self) -> None:
        X, _ = planted_outliers(seed=1)
        a, b = self.scores(X, seed=3), self.scores(X, seed=3)
        assert np.array_equal(a, b), f"detector {self.name!r}: same data and seed twice gives different scores"

    def check_rejects_nonfinite(self) -> None:
        from fmb.errors import FMBError

        X, _ = planted_outliers(n=60)
        for bad in (np.nan, np.inf):
            Y = X.copy()
            Y[5, 2] = bad
            try:
                self.make().fit_score(Y, seed=0)
            except FMBError:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"detector {self.name!r}: a {bad} input raises {type(exc).__name__}, not a "
                    f"one-line fmb.errors.DetectorError (use Detector.check_input)"
                ) from exc
            raise AssertionError(
                f"detector {self.name!r}: accepts a {bad} in its input; reject it with "
                f"fmb.errors.DetectorError (Detector.check_input does)"
            )
