"""Built-in models: the non-deep ``baseline``, the floor every foundation model is compared against."""

from __future__ import annotations

from fmb import __version__, hookimpl
from fmb.specs import ModelSpec

#: baseline embedding sizes: 4 bands x 16 x 16 blocks; 128 spectrum bins
IMAGE_DIM = 4 * 16 * 16
SPECTRUM_DIM = 128


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="baseline",
        description="No deep learning: asinh block-averaged band images and ivar-weighted, "
                    "normalised spectrum bins; joint = both, concatenated",
        loader="fmb.models.baseline:load_model", version=__version__, license="MIT",
        modalities=("image", "spectrum"),
        outputs={"image": IMAGE_DIM, "spectrum": SPECTRUM_DIM, "joint": IMAGE_DIM + SPECTRUM_DIM}))
