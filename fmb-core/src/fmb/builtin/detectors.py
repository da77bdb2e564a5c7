"""Built-in detectors: pyod's tabular detectors through one adapter; nf, mismatch and fusion."""

from __future__ import annotations

from fmb import __version__, extras, hookimpl
from fmb.detectors.flow_defaults import DEFAULTS as FLOW_DEFAULTS
from fmb.detectors.pyod_catalog import PYOD_DETECTORS
from fmb.specs import DetectorSpec


@hookimpl
def register_detectors(register):
    for name, (path, description, params) in PYOD_DETECTORS.items():
        register(
            DetectorSpec(
                name=name,
                description=f"{description} (pyod {path.rsplit('.', 1)[-1]}, standardised input)",
                loader=f"fmb.detectors.pyod_adapter:make_{name}",
                version=__version__,
                license="BSD-2-Clause (pyod)",
                citation="Zhao, Nasrullah & Li (2019), PyOD: A Python Toolbox for Scalable Outlier Detection, JMLR",
                params=params,
            )
        )
    register(
        DetectorSpec(
            name="nf",
            description="Normalising-flow density (zuko MAF/NSF) on PCA-whitened embeddings, "
            "out-of-fold: score = -log p" + extras.status_note("flows"),
            loader="fmb.detectors.flow:make_detector",
            version=__version__,
            license="MIT (zuko)",
            citation="Rozet et al., zuko: normalizing flows in PyTorch (2022); Papamakarios et al. (2017), MAF",
            params=dict(FLOW_DEFAULTS),
        )
    )
    register(
        DetectorSpec(
            name="mismatch",
            description="Cross-modal mismatch: 1 - cos(image, spectrum) embeddings of the same "
            "object (one shared space, or align=cca fitted out-of-fold)",
            loader="fmb.detectors.mismatch:make_detector",
            version=__version__,
            license="MIT",
            params={"align": "none", "folds": 5, "pca": 32, "components": 8},
        )
    )
    register(
        DetectorSpec(
            name="crossmodal",
            description="Cross-modal residual: each modality's PCA components predicted from the "
            "other's out of fold (kNN or ridge regression); score = mean squared "
            "robust residual, or a base detector's score of the residuals",
            loader="fmb.detectors.crossmodal:make_detector",
            version=__version__,
            license="MIT",
            citation="scikit-learn: Pedregosa et al. (2011), JMLR 12, 2825",
            params={"base": "norm", "regressor": "knn", "folds": 5, "pca": 16, "neighbors": 15, "base_params": {}},
        )
    )
    register(
        DetectorSpec(
            name="subspace",
            description="A base detector (default lof) on each group of correlated columns (Spearman, "
            "average linkage), combined by each object's maximum percentile",
            loader="fmb.detectors.subspace:make_detector",
            version=__version__,
            license="MIT",
            citation="Lazarevic & Kumar (2005), Feature bagging for outlier detection, KDD",
            params={"base": "lof", "base_params": {}, "correlation": 0.5},
        )
    )
    register(
        DetectorSpec(
            name="fusion",
            description="Percentile-rank fusion (geo | min | avg | max) of a base detector's image and "
            "spectrum scores, the mismatch score, (crossmodal=true) the crossmodal residual and "
            "(consistency=true) the joint embedding's extra cross-modal columns",
            loader="fmb.detectors.fusion:make_detector",
            version=__version__,
            license="MIT",
            params={
                "base": "iforest",
                "base_params": {},
                "mode": "geo",
                "mismatch": "auto",
                "align": "none",
                "crossmodal": False,
                "crossmodal_params": {},
                "consistency": False,
                "t_image": 0.0,
                "t_spectrum": 0.0,
                "t_mismatch": 0.0,
            },
        )
    )
