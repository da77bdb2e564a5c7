"""Detectors over several embeddings of the same objects, and ``mismatch``: 1 - cos(image, spectrum).

A :class:`MultiInputDetector` declares ``inputs`` (model outputs, e.g. ``("image", "spectrum")``);
``fmb run`` calls :meth:`MultiInputDetector.fit_score_inputs` once on the objects that have all of
them and reports the result under the modality ``"image+spectrum"``.

The cosine only means something when both embeddings live in one space (AstroCLIP's do). With
``align="none"`` (default) ``fmb run`` refuses a model whose spec does not declare ``shared_space=True``
(:meth:`MismatchDetector.check_model`), and embeddings of different widths are an error; ``align="cca"`` first maps
both into a shared space by canonical correlation analysis fitted out-of-fold (k folds): each
block is PCA-whitened to ``pca`` components, the cross-covariance is diagonalised by an SVD, and
each object is scored in the first ``components`` canonical directions by a projection fitted on
the other folds only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmb.detectors.base import MultiInputDetector  # re-exported: it used to live here
from fmb.errors import DetectorError, UsageError
from fmb.paramschema import Param, check_params, schema

ALIGN = ("none", "cca")

#: the declared parameters of ``mismatch`` (checked by :func:`make_detector` before any work)
SCHEMA = schema(
    Param("align", ("str",), "none", choices=ALIGN, doc="none: one shared space; cca: aligned out-of-fold"),
    Param("folds", ("int",), 5, low=2, doc="out-of-fold splits of the CCA alignment"),
    Param("pca", ("int",), 32, low=1, doc="PCA components per modality before CCA"),
    Param("components", ("int",), 8, low=1, doc="CCA components"),
)


def cosine_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; a zero row has cosine 0."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    return (A * B).sum(axis=1) / np.where(na * nb > 0, na * nb, 1.0)


def _whitener(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a [D, k'] map to k' <= k whitened principal components (zero-variance ones dropped)."""
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    sd = s / np.sqrt(max(len(X) - 1, 1))
    keep = sd > 1e-9 * max(sd.max(initial=0.0), 1e-300)
    keep[k:] = False
    if not keep.any():
        raise DetectorError("detector 'mismatch': an embedding is constant (zero variance); cannot align")
    return mean, vt[keep].T / sd[keep]


def fit_cca(A: np.ndarray, B: np.ndarray, pca: int, components: int):
    """A function mapping (A, B) rows into the shared canonical space, fitted on these rows."""
    k = min(pca, len(A) - 2)
    ma, Wa = _whitener(A, k)
    mb, Wb = _whitener(B, k)
    Za, Zb = (A - ma) @ Wa, (B - mb) @ Wb
    u, _, vt = np.linalg.svd(Za.T @ Zb / len(A), full_matrices=False)
    c = min(components, u.shape[1])
    Pa, Pb = Wa @ u[:, :c], Wb @ vt[:c].T

    def project(A2: np.ndarray, B2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (A2 - ma) @ Pa, (B2 - mb) @ Pb

    return project


class MismatchDetector(MultiInputDetector):
    """Score = 1 - cos(image, spectrum): high when the two views of an object disagree."""

    name = "mismatch"

    def __init__(self, align: str = "none", folds: int = 5, pca: int = 32, components: int = 8) -> None:
        align = str(align).lower()
        if align not in ALIGN:
            raise UsageError(f"detector 'mismatch': align must be one of {', '.join(ALIGN)}, got {align!r}")
        if int(folds) < 2:
            raise UsageError(f"detector 'mismatch': folds must be at least 2, got {folds}")
        super().__init__(align=align, folds=int(folds), pca=int(pca), components=int(components))

    def check_model(self, spec: Any) -> None:
        """Refuse ``align=none`` on a model whose spec does not declare ``shared_space``: the cosine of two
        unrelated spaces (AION's, astroPT's, the baselines') is noise, not a mismatch."""
        super().check_model(spec)
        if self.params["align"] == "none" and not getattr(spec, "shared_space", False):
            raise UsageError(
                f"detector 'mismatch': model {spec.name!r} declares no shared image-spectrum space "
                "(ModelSpec.shared_space), so 1 - cos between its embeddings means nothing; use "
                "mismatch:align=cca or the crossmodal detector"
            )

    def fit_score_inputs(self, Xs: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
        Xs = self.check_inputs(Xs)
        A, B = Xs["image"], Xs["spectrum"]
        if self.params["align"] == "none":
            if A.shape[1] != B.shape[1]:
                raise DetectorError(
                    f"detector 'mismatch': image ({A.shape[1]}-d) and spectrum ({B.shape[1]}-d) "
                    "embeddings are not in one space; use a model with aligned embeddings "
                    "(e.g. astroclip) or mismatch:align=cca"
                )
            cos = cosine_rows(A, B)
        else:
            cos = self._cca_oof(A, B, seed)
        self.details_ = {"align": self.params["align"], "median_cosine": float(np.median(cos))}
        self.extras_ = {"cosine": cos}
        return 1.0 - cos

    def _cca_oof(self, A: np.ndarray, B: np.ndarray, seed: int) -> np.ndarray:
        k = self.params["folds"]
        if len(A) < 4 * k:
            raise DetectorError(f"detector 'mismatch': {len(A)} objects are too few for {k}-fold alignment")
        folds = np.random.default_rng(seed).permutation(np.arange(len(A)) % k)
        self.folds_ = folds
        cos = np.empty(len(A))
        for f in range(k):
            test = folds == f
            project = fit_cca(A[~test], B[~test], self.params["pca"], self.params["components"])
            cos[test] = cosine_rows(*project(A[test], B[test]))
        return cos


def make_detector(**params: Any) -> MismatchDetector:
    """Loader of the ``mismatch`` detector spec; parameters are checked against :data:`SCHEMA`."""
    return MismatchDetector(**check_params("detector 'mismatch'", SCHEMA, params))
