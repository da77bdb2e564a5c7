"""The detector interface: fit on embeddings, score every object (higher = more anomalous)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from fmb.errors import DetectorError


class Detector(ABC):
    """A fitted-and-scored anomaly detector over an ``[N, D]`` embedding matrix."""

    name: str = ""
    #: True when the detector fits on the distinct rows only and gives identical rows one score
    #: (see :func:`unique_rows`); core reports it when the embeddings hold duplicate rows.
    deduplicates: bool = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        """Fit on ``X`` and return one score per row; higher means more anomalous."""

    def check_input(self, X: np.ndarray) -> np.ndarray:
        """Reject what no detector can use, with a one-line message naming the detector."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise DetectorError(f"detector {self.name!r}: expected a 2-D matrix, got shape {X.shape}")
        if X.shape[0] < 2:
            raise DetectorError(f"detector {self.name!r}: needs at least 2 objects, got {X.shape[0]}")
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        if not np.isfinite(X.sum()):  # fast path; find the row only when something is wrong
            bad = ~np.isfinite(X).all(axis=1)
            if bad.any():
                raise DetectorError(f"detector {self.name!r}: row {int(np.flatnonzero(bad)[0])} of the "
                                    f"embeddings is not finite ({int(bad.sum())} rows in all)")
        return X


def standardise(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (statistics in float64, result in X's dtype);
    constant columns become zero."""
    mu = X.mean(axis=0, dtype=np.float64)
    sd = X.std(axis=0, dtype=np.float64)
    out = X - mu.astype(X.dtype)
    out /= np.where(sd > 0, sd, 1.0).astype(X.dtype)
    return out


def unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``[N, D]`` ``X`` (``[U, D]``, in lexicographic order, so independent of the
    row order of ``X``) and the ``[N]`` index of each row of ``X`` among them (``X == U[inverse]``).

    -0.0 and +0.0 count as equal. Uses ``numpy.unique(axis=0)``.
    """
    U, inverse = np.unique(np.asarray(X) + 0.0, axis=0, return_inverse=True)
    return U, inverse.reshape(-1)


def duplicate_rows(X: np.ndarray) -> int:
    """How many rows of ``[N, D]`` ``X`` repeat an earlier row exactly (``N`` minus the distinct rows)."""
    return int(len(X) - len(unique_rows(X)[0])) if len(X) else 0
