"""One adapter over pyod's tabular detectors: standardise, fit, return training scores."""

from __future__ import annotations

import importlib
import inspect
from functools import partial
from typing import Any

import numpy as np

from fmb.detectors.base import Detector, standardise, unique_rows
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.errors import DetectorError, UsageError

#: Detectors whose neighbourhood radii collapse to zero on exact duplicate rows (LOF's local
#: reachability density becomes infinite, so the neighbours of a group of copies score 1e7 and
#: more; INNE's hyperspheres get radius 0). They are fitted on the distinct rows and identical rows
#: share one score, as Breunig et al. (2000, "LOF: identifying density-based local outliers",
#: SIGMOD, sec. 3) prescribe with their k-distinct-distance.
DEDUPLICATE = frozenset({"lof", "inne"})

#: LOF of a group of more than ``n_neighbors`` identical rows: each copy's k-neighbourhood is the
#: group itself, whose members all have the same reachability density, so the ratio is exactly 1
#: (an inlier; Breunig et al. 2000, Lemma 1), which is also what pyod returns for those rows.
LOF_DENSE_GROUP = 1.0


def _pyod_class(path: str) -> type:
    module, _, cls = path.rpartition(".")
    return getattr(importlib.import_module(module), cls)


class PyODDetector(Detector):
    """A pyod detector. ``standardize`` (default True) z-scores each column first.

    Detectors in :data:`DEDUPLICATE` are fitted on the distinct rows of ``X`` and give identical
    rows one score (for LOF, groups larger than ``n_neighbors`` score :data:`LOF_DENSE_GROUP`).

    Any keyword of the pyod class is accepted; unknown ones are a one-line error listing the
    valid names. ``random_state`` defaults to the run's seed where the class takes one.
    """

    def __init__(self, name: str, standardize: bool = True, **params: Any) -> None:
        path, _, defaults = PYOD_DETECTORS[name]
        self.name = name
        self.cls = _pyod_class(path)
        self.standardize = bool(standardize)
        accepted = set(inspect.signature(self.cls.__init__).parameters) - {"self", "args", "kwargs"}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise UsageError(f"detector {name!r}: unknown parameter(s) {', '.join(unknown)} "
                             f"(valid: standardize, {', '.join(sorted(accepted))})")
        self.accepted = accepted
        self.deduplicates = name in DEDUPLICATE
        super().__init__(**{**defaults, **params})

    def resolved_params(self, seed: int) -> dict[str, Any]:
        params = dict(self.params)
        if "random_state" in self.accepted:
            params.setdefault("random_state", seed)
        return params

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        X = self.check_input(X)
        if self.deduplicates:
            U, inverse = unique_rows(X)
            if len(U) < len(X):
                scores = self._fit_score(U, seed, "distinct rows")[inverse]
                if self.name == "lof":
                    scores[np.bincount(inverse)[inverse] > int(self.params["n_neighbors"])] = LOF_DENSE_GROUP
                return scores
        return self._fit_score(X, seed, "objects")

    def _fit_score(self, X: np.ndarray, seed: int, what: str) -> np.ndarray:
        k = self.params.get("n_neighbors")
        if isinstance(k, int) and k >= X.shape[0]:
            raise DetectorError(f"detector {self.name!r}: n_neighbors={k} must be smaller than the "
                                f"number of {what} ({X.shape[0]})")
        if self.standardize:
            X = standardise(X)
        try:
            model = self.cls(**self.resolved_params(seed))
            model.fit(X)
        except (TypeError, ValueError) as exc:
            raise DetectorError(f"detector {self.name!r} with {self.params}: {exc}".splitlines()[0]) from exc
        return np.asarray(model.decision_scores_, dtype=np.float64)


def make_detector(name: str, **params: Any) -> PyODDetector:
    """Factory: ``make_detector("knn", n_neighbors=10)``."""
    return PyODDetector(name, **params)


for _name in PYOD_DETECTORS:
    globals()[f"make_{_name}"] = partial(make_detector, _name)
