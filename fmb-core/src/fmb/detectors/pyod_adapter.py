"""One adapter over pyod's tabular detectors: standardise, fit, return training scores."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from fmb.detectors import neighbours as nb
from fmb.detectors.base import Detector, may_have_duplicate_rows, standardise, unique_rows
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.errors import DetectorError, UsageError
from fmb.paramschema import Param, check_params, schema
from fmb.threads import limited

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


#: explicit ranges for the common pyod parameters (applied where the class takes them); the others
#: get their type from the class's default value (int, float or bool), see :func:`pyod_schema`
COMMON = schema(
    Param("n_neighbors", ("int",), low=1),
    Param("n_estimators", ("int",), low=1),
    Param("contamination", ("float",), low=0, high=0.5, low_open=True),
    Param("n_components", ("int", "none"), low=1),
    Param("n_clusters", ("int",), low=2),
    Param("n_bins", ("int", "str"), low=2, choices=("auto",)),
    Param("n_random_cuts", ("int",), low=1),
    Param("leaf_size", ("int",), low=1),
    Param("n_jobs", ("int",)),
    Param("algorithm", ("str",), choices=("auto", "ball_tree", "kd_tree", "brute")),
    Param("nu", ("float",), low=0, high=1, low_open=True),
    Param("bandwidth", ("float",), low=0, low_open=True),
    Param("kernel", ("str",), choices=("linear", "poly", "rbf", "sigmoid")),
    Param("covariance_type", ("str",), choices=("full", "tied", "diag", "spherical")),
    Param("max_features", ("int", "float"), low=0, low_open=True),
    Param("support_fraction", ("float", "none"), low=0, high=1, low_open=True),
    Param("random_state", ("int", "none"), low=0),
)
#: per-detector choices pyod checks only when fitting
SPECIFIC = {"knn": schema(Param("method", ("str",), choices=("largest", "mean", "median")))}
#: detectors whose neighbour search switches to an approximate (NN-descent) graph on many rows
#: (:mod:`fmb.detectors.neighbours`), with FMB's parameter ``ann_threshold``
ANN = frozenset({"knn", "lof"})
#: detectors computed column by column (:mod:`fmb.detectors.columnwise`, same formula, memory O(N))
#: from ``stream_threshold`` rows on; pyod's own code below it
COLUMNWISE = frozenset({"ecod"})
#: detectors fitted on a seeded subsample of :data:`SUBSAMPLE_ROWS` rows from ``stream_threshold`` rows
#: on and scored in blocks of rows (pyod's ``decision_function``): ``pca`` (a covariance estimate from
#: 100,000 rows; pyod's fit would build two [N, D] float64 matrices for its own scores)
SUBSAMPLED = frozenset({"pca"})
#: rows ``pca`` is fitted on above ``stream_threshold``; rows scored per block
SUBSAMPLE_ROWS, SCORE_BLOCK = 100_000, 65_536
#: default ``stream_threshold``: pyod's ECOD holds ~7 [N, D] float64 matrices at once (1.47 GB peak
#: at 100,000 x 256, measured), so from here on the column-by-column form is used
STREAM_THRESHOLD = 20_000


def pyod_schema(name: str, cls: type) -> dict[str, Param]:
    """Declared parameters of a pyod detector: the class's keyword arguments (its signature, as
    scikit-learn's ``_get_param_names`` reads it), typed by :data:`COMMON`, :data:`SPECIFIC` or the
    default value, plus FMB's ``standardize``."""
    out = {"standardize": Param("standardize", ("bool",), True, doc="z-score each column first")}
    if name in ANN:
        out["ann_threshold"] = Param(
            "ann_threshold",
            ("int",),
            nb.ANN_THRESHOLD,
            low=0,
            doc="use an approximate (NN-descent) neighbour graph from this many rows on (0: always; exact below)",
        )
    if name in COLUMNWISE | SUBSAMPLED:
        out["stream_threshold"] = Param(
            "stream_threshold",
            ("int",),
            STREAM_THRESHOLD,
            low=0,
            doc=(
                "compute the score column by column (memory O(N)) from this many rows on (0: always)"
                if name in COLUMNWISE
                else f"fit on a seeded subsample of {SUBSAMPLE_ROWS} rows and score in blocks from this many rows on"
            ),
        )
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        d = p.default
        decl = SPECIFIC.get(name, {}).get(p.name) or COMMON.get(p.name)
        if decl is None:
            kind = (
                ("bool",)
                if isinstance(d, bool)
                else ("int",)
                if isinstance(d, int)
                else ("float",)
                if isinstance(d, float)
                else ("any",)
            )
            decl = Param(p.name, kind)
        out[p.name] = replace(decl, default=d)
    return out


class PyODDetector(Detector):
    """A pyod detector. ``standardize`` (default True) z-scores each column first.

    Detectors in :data:`DEDUPLICATE` are fitted on the distinct rows of ``X`` and give identical
    rows one score (for LOF, groups larger than ``n_neighbors`` score :data:`LOF_DENSE_GROUP`). On the
    approximate graph, rows that :func:`~fmb.detectors.base.may_have_duplicate_rows` proves distinct go to it
    as they are (its result does not depend on row order), without :func:`~fmb.detectors.base.unique_rows`'
    record sort (24 of lof's 488 CPU s at 1,000,000 x 256; docs/detection.md).

    knn and lof (:data:`ANN`) on ``ann_threshold`` rows or more (default
    :data:`fmb.detectors.neighbours.ANN_THRESHOLD`) take their k-neighbour graph from a seeded,
    deterministic NN-descent graph and compute pyod's score from it (:func:`~fmb.detectors.neighbours.knn_scores`,
    :func:`~fmb.detectors.neighbours.lof_scores`); below it, pyod's exact search. The graph's measured
    recall and search width go to :attr:`details_` (results.json ``details.neighbours``).

    ``ecod`` on ``stream_threshold`` rows or more (default :data:`STREAM_THRESHOLD`) is computed column
    by column (:func:`fmb.detectors.columnwise.ecod_scores`, pyod's values to ~1e-15). ``iforest`` scores
    the rows once (pyod scores them twice: in scikit-learn's fit, for its threshold, and again after),
    with the same trees and the same numbers as pyod. ``hbos`` (a number of bins, the default) builds its
    per-element score matrix in row blocks (:func:`fmb.detectors.columnwise.hbos_scores`), bit-identical.
    ``pca`` on ``stream_threshold`` rows or more is fitted on a seeded subsample of :data:`SUBSAMPLE_ROWS`
    rows and scores every row in blocks (the rows used go to :attr:`details_`).

    Every keyword of the pyod class is accepted and checked when the detector is made (before any
    data are read) against :func:`pyod_schema`: an unknown name or a bad value is a one-line
    UsageError naming the detector, the parameter and what is valid. ``random_state`` defaults to
    the run's seed where the class takes one.
    """

    def __init__(self, name: str, **params: Any) -> None:
        path, _, defaults = PYOD_DETECTORS[name]
        self.name = name
        self.cls = _pyod_class(path)
        declared = pyod_schema(name, self.cls)
        params = check_params(f"detector {name!r}", declared, params)
        self.standardize = params.pop("standardize", True)
        self.ann_threshold = params.pop("ann_threshold", nb.ANN_THRESHOLD) if name in ANN else None
        self.stream_threshold = (
            params.pop("stream_threshold", STREAM_THRESHOLD) if name in COLUMNWISE | SUBSAMPLED else None
        )
        self.accepted = set(declared) - {"standardize", "ann_threshold", "stream_threshold"}
        #: what the last fit used (neighbour graph: method, K, iterations, measured recall), for results.json
        self.details_: dict[str, Any] = {}
        self.deduplicates = name in DEDUPLICATE
        super().__init__(**{**defaults, **params})
        try:  # pyod's own constructor checks, now rather than after embedding
            self.cls(**self.resolved_params(0))
        except (TypeError, ValueError, AssertionError) as exc:
            raise UsageError(f"detector {name!r} with {self.params}: {exc}".splitlines()[0]) from exc

    def resolved_params(self, seed: int) -> dict[str, Any]:
        params = dict(self.params)
        if "random_state" in self.accepted:
            params.setdefault("random_state", seed)
        return params

    def fit_score(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        """Scores of the ``[N, D]`` rows of ``X`` (``[N]`` float64), BLAS/OpenMP capped by
        :func:`fmb.threads.limited`; DetectorError on unusable input or a failed fit."""
        X = self.check_input(X)
        with limited():
            return self._dedup_fit_score(X, seed)

    def uses_ann(self, n_rows: int) -> bool:
        """True when a fit on ``n_rows`` (distinct) rows searches neighbours with the NN-descent graph: a
        Euclidean knn/lof (metric minkowski with p=2, the default) with ``n_rows >= ann_threshold``."""
        if self.ann_threshold is None or n_rows < self.ann_threshold:
            return False
        metric, p = self.params.get("metric", "minkowski"), self.params.get("p", 2)
        return metric in ("euclidean", "l2") or (metric == "minkowski" and p == 2)

    def _dedup_fit_score(self, X: np.ndarray, seed: int) -> np.ndarray:
        # the approximate graph's result does not depend on the row order (neighbours.ann_knn), so rows that are
        # certainly distinct skip unique_rows' sort (24 CPU s at 1,000,000 x 256); pyod's exact search gets the
        # rows in unique_rows' content order, as before
        if self.deduplicates and (not self.uses_ann(len(X)) or may_have_duplicate_rows(X)):
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
            raise DetectorError(
                f"detector {self.name!r}: n_neighbors={k} must be smaller than the number of {what} ({X.shape[0]})"
            )
        if self.standardize:
            X = standardise(X)
        self.details_ = {}
        if self.uses_ann(X.shape[0]):
            dist, idx, info = nb.ann_knn(X, int(k), seed=seed)
            self.details_["neighbours"] = info
            if self.name == "knn":
                return nb.knn_scores(dist, self.params.get("method", "largest"))
            return nb.lof_scores(dist, idx)
        streamed = self.stream_threshold is not None and X.shape[0] >= self.stream_threshold
        if streamed and self.name in COLUMNWISE:
            from fmb.detectors.columnwise import ecod_scores

            self.details_["columnwise"] = True
            return ecod_scores(X)
        try:
            model = self.cls(**self.resolved_params(seed))
            if streamed and self.name in SUBSAMPLED:
                return self._subsample_fit_score(model, X, seed)
            if self.name == "iforest":
                return _iforest_scores(model, X)
            if self.name == "hbos" and isinstance(model.n_bins, int):
                from fmb.detectors.columnwise import hbos_scores

                scores = hbos_scores(X, model.n_bins, model.alpha, model.tol)
                if scores is not None:
                    return scores
            model.fit(X)
        except (TypeError, ValueError) as exc:
            raise DetectorError(f"detector {self.name!r} with {self.params}: {exc}".splitlines()[0]) from exc
        return np.asarray(model.decision_scores_, dtype=np.float64)

    def _subsample_fit_score(self, model: Any, X: np.ndarray, seed: int) -> np.ndarray:
        """Fit ``model`` on :data:`SUBSAMPLE_ROWS` rows of ``X`` chosen by ``seed`` from their positions (FMB
        passes rows in canonical ``object_id`` order, so the choice does not depend on file order), then score
        every row with pyod's ``decision_function`` in blocks of :data:`SCORE_BLOCK` rows. With all rows
        chosen this equals pyod's ``fit(X).decision_scores_`` bit for bit. The rows used go to ``details_``."""
        n = X.shape[0]
        m = min(n, SUBSAMPLE_ROWS)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False)) if m < n else np.arange(n)
        model.fit(X[rows])
        out = np.empty(n)
        for a in range(0, n, SCORE_BLOCK):
            out[a : a + SCORE_BLOCK] = model.decision_function(X[a : a + SCORE_BLOCK])
        self.details_["fit_rows"] = {"rows": int(m), "of": int(n), "seed": int(seed)}
        return out


def _iforest_scores(model: Any, X: np.ndarray) -> np.ndarray:
    """pyod ``IForest.fit(X).decision_scores_`` (``[N]`` float64) with one scoring pass instead of two.

    pyod fits scikit-learn's IsolationForest with its ``contamination``, whose fit scores every row to
    set ``offset_`` (that percentile), then scores every row again: ``-(score_samples(X) - offset_)``.
    Here the forest is fitted with ``contamination="auto"`` (the trees do not depend on it: the same
    random draws, the same subsamples), the rows are scored once and the percentile is taken from those
    scores: the same numbers, half the time (scoring is the O(N) part; each tree fits on 256 rows).
    The rows are cast to float32 once, as scikit-learn's trees would on every call.
    """
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(
        n_estimators=model.n_estimators,
        max_samples=model.max_samples,
        contamination="auto",
        max_features=model.max_features,
        bootstrap=model.bootstrap,
        n_jobs=model.n_jobs,
        random_state=model.random_state,
        verbose=model.verbose,
    )
    X = np.asarray(X, dtype=np.float32)
    forest.fit(X)
    raw = forest.score_samples(X)
    return -1 * (raw - np.percentile(raw, 100.0 * model.contamination))


def make_detector(name: str, **params: Any) -> PyODDetector:
    """Factory: ``make_detector("knn", n_neighbors=10)``."""
    return PyODDetector(name, **params)


for _name in PYOD_DETECTORS:
    globals()[f"make_{_name}"] = partial(make_detector, _name)
