"""One adapter over pyod's tabular detectors: standardise, fit, return training scores."""

from __future__ import annotations

import importlib
import inspect
from functools import partial
from typing import Any

import numpy as np

from fmb.detectors.base import Detector, standardise
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.errors import DetectorError, UsageError


def _pyod_class(path: str) -> type:
    module, _, cls = path.rpartition(".")
    return getattr(importlib.import_module(module), cls)


class PyODDetector(Detector):
    """A pyod detector. ``standardize`` (default True) z-scores each column first.

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
        super().__init__(**{**defaults, **params})

    def resolved_params(self, seed: int) -> dict[str, Any]:
        params = dict(self.params)
        if "random_state" in self.accepted:
            params.setdefault("random_state", seed)
        return params

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        X = self.check_input(X)
        k = self.params.get("n_neighbors")
        if isinstance(k, int) and k >= X.shape[0]:
            raise DetectorError(f"detector {self.name!r}: n_neighbors={k} must be smaller than the "
                                f"number of objects ({X.shape[0]})")
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
