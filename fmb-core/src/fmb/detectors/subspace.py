"""``subspace``: a base detector on groups of correlated columns, combined by the maximum percentile.

A detector on all D columns at once weighs every column alike, so a statistic that only one anomaly class
moves (a cross-modal flux ratio, a line statistic) is drowned by the dozens of columns that vary among
normal objects. ``subspace`` scores each group of mutually correlated columns on its own and keeps, for
every object, the most anomalous group's percentile: an object extreme in one group stays extreme however
ordinary the other groups find it (feature bagging combined by each object's best rank: Lazarevic & Kumar
2005, "Feature bagging for outlier detection", KDD; the maximum combination: Aggarwal & Sathe 2017,
"Outlier Ensembles", Springer, sec. 3.2). Groups come from the data, not from labels or the model:

1. the ``[D, D]`` Spearman rank correlation of the columns over the scored objects (``scipy.stats.spearmanr``;
   a constant column correlates with nothing);
2. average-linkage hierarchical clustering of the distance ``1 - |rho|`` (``scipy.cluster.hierarchy``), cut
   at ``1 - correlation`` (``fcluster``, criterion ``distance``): columns whose average |rho| with a group
   exceeds ``correlation`` (default 0.5) join it; a column correlated with nothing is its own group;
3. each group (its columns in their original order) is scored by ``base`` (default ``lof``, standardised by
   the pyod adapter). Where ``base`` cannot score a group (e.g. LOF needs more distinct rows than
   ``n_neighbors``: a column of a few values) the group is scored by ECOD (:func:`fmb.detectors.columnwise.
   ecod_scores`, which needs no neighbours), recorded in ``details_["fallback_groups"]``;
4. each group's scores become percentiles ``rank / N`` in (0, 1] (:func:`fmb.detectors.fusion.percentiles`,
   ties share their average rank); the score is ``max_g p_g + mean_g p_g / (4 N)``: the maximum, its ties
   (each group's top object has p = 1) broken by the mean percentile (the added term is below a quarter of
   the smallest step, 1 / (2 N), between two distinct maxima, so it never reorders them).

Input ``[N, D]`` (N >= 2), output ``[N]`` float64 in (0, 1.25], higher = more anomalous. Deterministic for
a seed (the seed goes to ``base``); the groups and percentiles depend on the set of rows, not their order.
``details_`` holds the groups as column indices. Errors: DetectorError (one line) when the matrix is not
finite or has under 2 rows; UsageError for a multi-input or unknown ``base``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fmb.detectors.base import Detector, MultiInputDetector
from fmb.detectors.columnwise import ecod_scores
from fmb.detectors.fusion import percentiles
from fmb.errors import DetectorError, UsageError
from fmb.paramschema import Param, check_params, schema

#: the declared parameters of ``subspace`` (checked by :func:`make_detector` before any work)
SCHEMA = schema(
    Param("base", ("str",), "lof", doc="the detector scoring each group of columns"),
    Param("base_params", ("dict", "none"), None, doc="its parameters"),
    Param(
        "correlation",
        ("float",),
        0.5,
        low=0,
        high=1,
        doc="columns whose average |Spearman rho| with a group exceeds this join it (1: every column alone)",
    ),
)


def column_groups(X: np.ndarray, correlation: float) -> list[np.ndarray]:
    """Groups of correlated columns of ``[N, D]`` ``X``: a list of ascending column-index arrays that
    partition ``range(D)``, ordered by their first column (see the module docstring, steps 1-2)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from scipy.stats import spearmanr

    d = X.shape[1]
    if d == 1:
        return [np.array([0])]
    with warnings.catch_warnings():  # a constant column: rho is NaN -> correlated with nothing
        warnings.simplefilter("ignore", RuntimeWarning)
        rho = np.asarray(spearmanr(X).correlation, np.float64).reshape(d, d)
    dist = 1.0 - np.abs(np.nan_to_num(rho, nan=0.0))
    np.fill_diagonal(dist, 0.0)
    dist = np.clip((dist + dist.T) / 2.0, 0.0, 1.0)
    labels = fcluster(linkage(squareform(dist, checks=False), "average"), 1.0 - correlation, "distance")
    groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    return sorted(groups, key=lambda g: int(g[0]))


class SubspaceDetector(Detector):
    """See the module docstring."""

    name = "subspace"

    def __init__(self, base: str = "lof", base_params: dict[str, Any] | None = None, correlation: float = 0.5) -> None:
        super().__init__(base=str(base), base_params=dict(base_params or {}), correlation=float(correlation))
        from fmb.plugins import UnknownNameError, registry

        try:
            self.base = registry().make_detector(self.params["base"], self.params["base_params"])
        except UnknownNameError as exc:
            raise UsageError(f"detector 'subspace': parameter base={base!r}: {exc}") from None
        if isinstance(self.base, MultiInputDetector):
            raise UsageError(f"detector 'subspace': base detector {base!r} must score one embedding at a time")
        self.details_: dict[str, Any] = {}

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        X = self.check_input(X)
        n = len(X)
        groups = column_groups(X, self.params["correlation"])
        P = np.empty((len(groups), n))
        fallback = []
        for k, g in enumerate(groups):
            Xg = np.ascontiguousarray(X[:, g])
            try:
                s = self.base.fit_score(Xg, seed=seed)
            except DetectorError:  # e.g. LOF on a column of fewer distinct values than n_neighbors
                s = ecod_scores(Xg.astype(np.float64))
                fallback.append(k)
            P[k] = percentiles(s)
        self.details_ = {
            "base": self.params["base"],
            "groups": [g.tolist() for g in groups],
            "fallback_groups": fallback,
        }
        return P.max(axis=0) + P.mean(axis=0) / (4.0 * n)


def make_detector(**params: Any) -> SubspaceDetector:
    """Loader of the ``subspace`` detector spec; parameters are checked against :data:`SCHEMA`."""
    return SubspaceDetector(**check_params("detector 'subspace'", SCHEMA, params))
