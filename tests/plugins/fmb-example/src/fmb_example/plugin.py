"""Registers the ``example`` model and the ``mahalanobis`` detector. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.specs import DetectorSpec, ModelSpec

IMAGE_DIM = 32
SPECTRUM_DIM = 16


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="example",
            description="Example plugin: random projection of pooled band images and of binned spectra "
            "plus spectrum moments; joint = both",
            loader="fmb_example.model:load_model",
            version=version("fmb-example"),
            license="MIT",
            modalities=("image", "spectrum"),
            outputs={"image": IMAGE_DIM, "spectrum": SPECTRUM_DIM, "joint": IMAGE_DIM + SPECTRUM_DIM},
            default_options={"projection_seed": 0},
        )
    )


@hookimpl
def register_detectors(register):
    register(
        DetectorSpec(
            name="mahalanobis",
            description="Example plugin: Mahalanobis distance to the mean under a shrunk covariance",
            loader="fmb_example.detector:make_detector",
            version=version("fmb-example"),
            license="MIT",
            params={"shrinkage": 0.1},
        )
    )
