"""``fusion``: percentile-rank fusion of a base detector's image and spectrum scores (and mismatch,
and the ``crossmodal`` residual).

On the N objects that have both embeddings, each component score s becomes a percentile
``p = rank_ascending(s) / N`` in (0, 1] (1 = most anomalous; ties share their average rank),
i.e. upstream's ``(N - rank + 1) / N``. With m = p_mismatch when the mismatch term is used and
m = 1 otherwise, and P the modality percentiles: p_image, p_spectrum and, with ``crossmodal=true``,
p_crossmodal (the :mod:`fmb.detectors.crossmodal` score, its own component), and with ``consistency=true``
p_consistency (below):

* ``geo`` = m * (prod P)^(1/|P|)   (sqrt(p_image * p_spectrum) without crossmodal)
* ``min`` = m * min(P)
* ``avg`` = m * mean(P)
* ``max`` = max(P, p_mismatch): an object counts as far as its most anomalous component ranks it, so
  an anomaly seen in one modality only (an artefact, a cross-modal inconsistency) is not averaged away
  by the others (the maximum combination of outlier ensembles: Aggarwal & Sathe 2017, "Outlier
  Ensembles", Springer, sec. 3.2; Lazarevic & Kumar 2005, KDD, combine feature-bagged detectors the
  same way, by each detector's top rank)

``consistency=true`` (inputs image, spectrum and joint): a model whose ``joint`` embedding is its image and
spectrum embeddings followed by extra columns that compare the two (baseline-strong's spectrophotometric
flux ratio, docs/baselines.md) gets those extra columns scored by ``base`` as a component of their own.
Inside ``joint`` such a column is one of D, weighed like every column that describes ordinary variety; as its
own component an object that only it finds (a spectrum of another galaxy) ranks as high as an artefact that
only the image finds. The joint embedding is checked, not assumed: its first columns must equal the image
and then the spectrum embedding exactly, with at least one column after them (else DetectorError, one line).

``uplift`` = fused - max(p_image, p_spectrum), in [-1, 0] for geo/min/avg: 0 when the fusion keeps the
object as high as its best single modality does (all components agree), strongly negative when only one
component finds it; for ``max`` it is >= 0: how far the cross-modal components lift the object.
``passes`` is True when p_image >= t_image, p_spectrum >= t_spectrum and
p_mismatch >= t_mismatch (defaults 0: everything passes). Neither changes the score; both are
written to scores.parquet and summarised in results.json. See docs/detection.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from fmb.detectors.base import Detector, MultiInputDetector
from fmb.detectors.crossmodal import make_detector as make_crossmodal
from fmb.detectors.mismatch import ALIGN, MismatchDetector
from fmb.errors import DetectorError, UsageError
from fmb.paramschema import Param, check_params, schema

MODES = ("geo", "min", "avg", "max")

#: the declared parameters of ``fusion`` (checked by :func:`make_detector` before any work)
SCHEMA = schema(
    Param("base", ("str",), "iforest", doc="the detector scoring each modality"),
    Param("base_params", ("dict", "none"), None, doc="its parameters"),
    Param("mode", ("str",), "geo", choices=MODES, doc="rank fusion: geometric mean, min, mean or max"),
    Param("mismatch", ("bool", "str"), "auto", choices=("auto",), doc="include the mismatch score"),
    Param("align", ("str",), "none", choices=ALIGN, doc="mismatch alignment"),
    Param("crossmodal", ("bool",), False, doc="add the crossmodal residual as a component"),
    Param("crossmodal_params", ("dict", "none"), None, doc="the crossmodal detector's parameters"),
    Param("consistency", ("bool",), False, doc="add the joint embedding's extra (cross-modal) columns as a component"),
    *(
        Param(f"t_{k}", ("float",), 0.0, low=0, high=1, doc=f"percentile threshold on the {k} score")
        for k in ("image", "spectrum", "mismatch")
    ),
)


def percentiles(scores: np.ndarray) -> np.ndarray:
    """``rank_ascending / N`` in (0, 1]; the highest score gets 1, ties share the average rank."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise DetectorError("fusion: no scores to rank")
    return rankdata(s, method="average") / len(s)


def fuse(
    p_image: np.ndarray,
    p_spectrum: np.ndarray,
    p_mismatch: np.ndarray | None = None,
    mode: str = "geo",
    p_crossmodal: np.ndarray | None = None,
    p_consistency: np.ndarray | None = None,
) -> np.ndarray:
    """The fused score of percentiles (see the module docstring)."""
    P = np.stack([p for p in (p_image, p_spectrum, p_crossmodal, p_consistency) if p is not None])
    if mode == "geo":
        f = np.exp(np.log(P).mean(axis=0))  # percentiles are > 0
    elif mode == "min":
        f = P.min(axis=0)
    elif mode == "avg":
        f = P.mean(axis=0)
    elif mode == "max":
        return P.max(axis=0) if p_mismatch is None else np.maximum(P.max(axis=0), p_mismatch)
    else:
        raise UsageError(f"fusion: mode must be one of {', '.join(MODES)}, got {mode!r}")
    return f if p_mismatch is None else p_mismatch * f


def uplift(fused: np.ndarray, p_image: np.ndarray, p_spectrum: np.ndarray) -> np.ndarray:
    """fused - max(p_image, p_spectrum)."""
    return fused - np.maximum(p_image, p_spectrum)


def passes(p: dict[str, np.ndarray], thresholds: dict[str, float]) -> np.ndarray:
    """True where every component's percentile reaches its threshold."""
    ok = np.ones(len(next(iter(p.values()))), dtype=bool)
    for name, t in thresholds.items():
        if name in p:
            ok &= p[name] >= t
    return ok


def joint_extra(Xs: dict[str, np.ndarray], model: str | None = None) -> np.ndarray:
    """The columns of ``Xs["joint"]`` ``[N, Di + Ds + E]`` after the image ``[N, Di]`` and spectrum ``[N, Ds]``
    embeddings it must begin with (``[N, E]``, E >= 1). Raises DetectorError (one line) when ``joint`` is not
    that concatenation, so that ``consistency=true`` never scores unrelated columns of another model's joint."""
    image, spectrum, joint = Xs["image"], Xs["spectrum"], Xs["joint"]
    di, ds = image.shape[1], spectrum.shape[1]
    check_joint_width(joint.shape[1], di, ds, model)
    if not np.array_equal(joint[:, :di], image) or not np.array_equal(joint[:, di : di + ds], spectrum):
        raise DetectorError(
            f"fusion: consistency=true needs a joint embedding that is the image and spectrum embeddings followed "
            f"by extra columns: {f'model {model!r}' if model else 'this model'} has a joint whose first {di + ds} "
            f"columns are not its image {di} + spectrum {ds} columns"
        )
    return np.ascontiguousarray(joint[:, di + ds :])


def check_joint_width(dj: int, di: int, ds: int, model: str | None = None) -> None:
    """Raise DetectorError (one line) unless a joint of ``dj`` columns leaves room for at least one extra
    column after an image of ``di`` and a spectrum of ``ds`` columns (the widths ``consistency=true`` needs)."""
    if dj <= di + ds:
        who = f"model {model!r}" if model else "this model"
        raise DetectorError(
            f"fusion: consistency=true needs a joint embedding that is the image and spectrum embeddings followed "
            f"by extra columns: {who} has joint {dj} columns, image {di} + spectrum {ds} "
            f"(needs extra columns after them)"
        )


def _base_detector(base: str, params: dict[str, Any]) -> Detector:
    from fmb.plugins import registry

    det = registry().make_detector(base, params)
    if isinstance(det, MultiInputDetector):
        raise UsageError(f"fusion: base detector {base!r} must score one embedding at a time")
    return det


class FusionDetector(MultiInputDetector):
    """See the module docstring."""

    name = "fusion"

    def __init__(
        self,
        base: str = "iforest",
        base_params: dict[str, Any] | None = None,
        mode: str = "geo",
        mismatch: bool | str = "auto",
        align: str = "none",
        crossmodal: bool = False,
        crossmodal_params: dict[str, Any] | None = None,
        consistency: bool = False,
        t_image: float = 0.0,
        t_spectrum: float = 0.0,
        t_mismatch: float = 0.0,
    ) -> None:
        mode = str(mode).lower()
        if mode not in MODES:
            raise UsageError(f"detector 'fusion': mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mismatch not in (True, False, "auto"):
            raise UsageError(f"detector 'fusion': mismatch must be true, false or auto, got {mismatch!r}")
        if base_params is not None and not isinstance(base_params, dict):
            raise UsageError("detector 'fusion': base_params must be a dict, e.g. base_params={'n_neighbors':10}")
        if crossmodal_params is not None and not isinstance(crossmodal_params, dict):
            raise UsageError("detector 'fusion': crossmodal_params must be a dict, e.g. crossmodal_params={'pca':8}")
        for t in (t_image, t_spectrum, t_mismatch):
            if not 0.0 <= float(t) <= 1.0:
                raise UsageError(f"detector 'fusion': thresholds are percentiles in [0, 1], got {t}")
        super().__init__(
            base=str(base),
            base_params=dict(base_params or {}),
            mode=mode,
            mismatch=mismatch,
            align=align,
            crossmodal=bool(crossmodal),
            crossmodal_params=dict(crossmodal_params or {}),
            consistency=bool(consistency),
            t_image=float(t_image),
            t_spectrum=float(t_spectrum),
            t_mismatch=float(t_mismatch),
        )
        self.base = _base_detector(self.params["base"], self.params["base_params"])
        self.mismatch = MismatchDetector(align=align)
        # checked here, before any work: a bad crossmodal parameter is a one-line error
        self.crossmodal = make_crossmodal(**self.params["crossmodal_params"]) if crossmodal else None
        if consistency:
            self.inputs = ("image", "spectrum", "joint")

    def check_model(self, spec: Any) -> None:
        """``mismatch=true`` with ``align=none`` needs a model that declares ``shared_space``;
        ``consistency=true`` needs a model whose declared output widths (``spec.outputs``) leave extra
        joint columns after the image and spectrum ones (DetectorError, one line, before any work; the
        embeddings themselves are checked again by :func:`joint_extra`)."""
        super().check_model(spec)
        if self.params["mismatch"] is True:
            self.mismatch.check_model(spec)
        widths = getattr(spec, "outputs", None) or {}
        if self.params["consistency"] and all(isinstance(widths.get(k), int) for k in ("image", "spectrum", "joint")):
            check_joint_width(widths["joint"], widths["image"], widths["spectrum"], getattr(spec, "name", None))

    def _use_mismatch(self, A: np.ndarray, B: np.ndarray) -> bool:
        m = self.params["mismatch"]
        if m == "auto":  # only where the cosine means something: an alignment, or a declared shared space
            if self.params["align"] != "none":
                return True
            spec = getattr(self, "model_spec", None)
            if spec is not None:
                return bool(getattr(spec, "shared_space", False)) and A.shape[1] == B.shape[1]
            return A.shape[1] == B.shape[1]  # direct API use without a model: the width rule only
        return bool(m)

    def fit_score_inputs(self, Xs: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
        Xs = self.check_inputs(Xs)
        comp = {
            "image": self.base.fit_score(Xs["image"], seed=seed),
            "spectrum": self.base.fit_score(Xs["spectrum"], seed=seed),
        }
        use_mis = self._use_mismatch(Xs["image"], Xs["spectrum"])
        if use_mis:
            comp["mismatch"] = self.mismatch.fit_score_inputs(Xs, seed=seed)
        if self.crossmodal is not None:
            comp["crossmodal"] = self.crossmodal.fit_score_inputs(Xs, seed=seed)
        if self.params["consistency"]:
            spec = getattr(self, "model_spec", None)
            comp["consistency"] = self.base.fit_score(joint_extra(Xs, getattr(spec, "name", None)), seed=seed)
        p = {k: percentiles(v) for k, v in comp.items()}
        fused = fuse(
            p["image"], p["spectrum"], p.get("mismatch"), self.params["mode"], p.get("crossmodal"), p.get("consistency")
        )
        up = uplift(fused, p["image"], p["spectrum"])
        ok = passes(
            p,
            {
                "image": self.params["t_image"],
                "spectrum": self.params["t_spectrum"],
                "mismatch": self.params["t_mismatch"],
            },
        )
        self.components_ = comp
        self.extras_ = {**{f"p_{k}": v for k, v in p.items()}, "uplift": up, "passes": ok}
        self.details_ = {
            "base": self.params["base"],
            "mode": self.params["mode"],
            "mismatch_used": use_mis,
            "crossmodal_used": self.crossmodal is not None,
            "consistency_used": bool(self.params["consistency"]),
            "n_passing": int(ok.sum()),
            "median_uplift": float(np.median(up)),
        }
        return fused


def make_detector(**params: Any) -> FusionDetector:
    """Loader of the ``fusion`` detector spec; parameters are checked against :data:`SCHEMA`."""
    return FusionDetector(**check_params("detector 'fusion'", SCHEMA, params))
