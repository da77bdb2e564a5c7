"""The detector interfaces: fit on embeddings, score every object (higher = more anomalous).

:class:`Detector` scores one ``[N, D]`` matrix; :class:`MultiInputDetector` scores several embeddings of
the same objects together (``inputs``, e.g. ``("image", "spectrum")``; ``fmb run`` calls
:meth:`MultiInputDetector.fit_score_inputs` once on the objects that have all of them and reports the
result under the modality ``"image+spectrum"``)."""

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
                raise DetectorError(
                    f"detector {self.name!r}: row {int(np.flatnonzero(bad)[0])} of the "
                    f"embeddings is not finite ({int(bad.sum())} rows in all)"
                )
        return X


class MultiInputDetector(Detector):
    """A detector that scores objects from several embeddings at once (``mismatch``, ``fusion``, ...).

    Core recognises one by this class (not by an ``inputs`` attribute): subclass it and implement
    :meth:`fit_score_inputs`."""

    inputs: tuple[str, ...] = ("image", "spectrum")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: per-object component scores (higher = more anomalous), reported with their own metrics
        self.components_: dict[str, np.ndarray] = {}
        #: extra per-object columns for scores.parquet
        self.extras_: dict[str, np.ndarray] = {}
        #: a small JSON-able summary for results.json
        self.details_: dict[str, Any] = {}

    def check_model(self, spec: Any) -> None:
        """Called by ``fmb run`` with the model's ModelSpec before any work; refuse with a UsageError here
        when this detector means nothing for that model. Default: remember the spec."""
        self.model_spec = spec

    @property
    def output_name(self) -> str:
        return "+".join(self.inputs)

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        raise DetectorError(f"detector {self.name!r} scores {self.output_name} together, not one matrix")

    @abstractmethod
    def fit_score_inputs(self, Xs: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
        """One score per object from the matrices named by ``inputs`` (same rows, same order)."""

    def check_inputs(self, Xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each of ``inputs`` checked by :meth:`Detector.check_input`; DetectorError when one is missing
        or their row counts differ."""
        missing = [k for k in self.inputs if k not in Xs]
        if missing:
            raise DetectorError(f"detector {self.name!r} needs the {', '.join(missing)} embedding(s)")
        out = {k: self.check_input(Xs[k]) for k in self.inputs}
        if len({len(v) for v in out.values()}) != 1:
            raise DetectorError(
                f"detector {self.name!r}: the {' and '.join(self.inputs)} embeddings have "
                f"different numbers of rows ({', '.join(str(len(v)) for v in out.values())})"
            )
        return out


#: columns per block when :func:`standardise` computes its float64 statistics (bounds the float64
#: temporary of ``std`` to ``N x STAT_BLOCK``: 128 MB at a million rows instead of 2 GB for 256 columns)
STAT_BLOCK = 16


def standardise(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (statistics in float64, result in X's dtype);
    constant columns become zero. ``[N, D]`` in, ``[N, D]`` out (one copy of ``X``); the statistics are
    computed over blocks of :data:`STAT_BLOCK` columns (the same sums, row by row, as over the whole matrix)."""
    d = X.shape[1]
    mu, sd = np.empty(d), np.empty(d)
    starts = list(range(0, d, STAT_BLOCK))
    if len(starts) > 1 and d - starts[-1] < 2:  # no one-column block: numpy would sum it pairwise
        starts.pop()
    for a, b in zip(starts, [*starts[1:], d]):
        mu[a:b] = X[:, a:b].mean(axis=0, dtype=np.float64)
        sd[a:b] = X[:, a:b].std(axis=0, dtype=np.float64)
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
    return int(len(X) - len(unique_rows(X)[0])) if may_have_duplicate_rows(X) else 0


#: rows per block of :func:`may_have_duplicate_rows` (bounds its copies to a few MB)
HASH_BLOCK = 16_384


def may_have_duplicate_rows(X: np.ndarray) -> bool:
    """False when the rows of ``[N, D]`` float ``X`` are certainly all distinct (-0.0 and +0.0 equal, as in
    :func:`unique_rows`); True when two rows share both of two 64-bit hashes of their bytes, which identical rows
    always do (then ask :func:`unique_rows`, exact). Linear in N: ``numpy.unique(axis=0)`` sorts the rows as
    ``D``-field records (24 CPU s at 1,000,000 x 256 float32 against ~3 s here, measured 2026-11-30), which
    :class:`~fmb.detectors.pyod_adapter.PyODDetector` need not pay when there is nothing to merge.

    Each hash is ``sum_j w_j c_j mod 2**64`` over the row's 32-bit words ``w_j`` with seeded odd 64-bit ``c_j``
    (a multilinear hash): two distinct rows collide in one with probability at most ``2**-33`` (their word
    differences are below ``2**32``), in both about ``2**-66``; a collision only sends the caller to the exact
    path."""
    if len(X) < 2:
        return False
    width = X.shape[1] * X.dtype.itemsize
    words = np.uint32 if width % 4 == 0 else np.uint8
    c = np.random.default_rng(20_111).integers(0, 2**63, size=(width // np.dtype(words).itemsize, 2), dtype=np.uint64)
    c = c * np.uint64(2) + np.uint64(1)  # fixed and odd: part of the method, not of a run
    h = np.empty((len(X), 2), np.uint64)
    for a in range(0, len(X), HASH_BLOCK):
        block = np.ascontiguousarray(X[a : a + HASH_BLOCK] + X.dtype.type(0.0))  # -0.0 + 0.0 is +0.0
        h[a : a + len(block)] = block.view(np.uint8).reshape(len(block), width).view(words) @ c
    h = h[np.lexsort((h[:, 1], h[:, 0]))]
    return bool((h[1:] == h[:-1]).all(axis=1).any())
