"""Built-in models: the non-deep ``baseline``, the floor every foundation model is compared against."""

from __future__ import annotations

from fmb import __version__, hookimpl
from fmb.specs import ModelSpec

#: baseline embedding sizes: 4 bands x 16 x 16 blocks; 128 spectrum bins
IMAGE_DIM = 4 * 16 * 16
SPECTRUM_DIM = 128
#: baseline-strong embedding sizes (their breakdown: fmb.models.baseline_strong; kept here so that
#: registering imports nothing heavy)
STRONG_IMAGE_DIM = 48
STRONG_SPECTRUM_DIM = 29
STRONG_JOINT_EXTRA = 1  # joint = image + spectrum + the flux-consistency column


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="baseline",
            description="No deep learning: asinh block-averaged band images and ivar-weighted, "
            "normalised spectrum bins; joint = both, concatenated",
            loader="fmb.models.baseline:load_model",
            version=__version__,
            license="MIT",
            modalities=("image", "spectrum"),
            outputs={"image": IMAGE_DIM, "spectrum": SPECTRUM_DIM, "joint": IMAGE_DIM + SPECTRUM_DIM},
        )
    )
    register(
        ModelSpec(
            name="baseline-strong",
            description="No deep learning, nothing fitted: multi-scale image statistics that keep high frequencies "
            "(block means, radial profiles, asymmetry, high-pass residual energy, sharpness, Radon line "
            "excess, close companion) and spectrum shape, data-quality, continuum and line indices at a spectrum-only "
            "redshift; joint = both (see docs/baselines.md)",
            loader="fmb.models.baseline_strong:load_model",
            version=__version__,
            license="MIT",
            citation=(
                "Conselice (2003) ApJS 147, 1 (asymmetry); Patton et al. (2000) ApJ 536, 153 and Bloom et al. "
                "(2002) AJ 123, 1111 (close pairs, chance coincidence); SDSS line list (vacuum wavelengths)"
            ),
            # 4: Radon on a clipped 3-px high-pass, 90 angles, 2 phases; 5: close-companion column pair_odds;
            # 6: vis_radon a matched line filter in sigma units, minus the largest line of pure noise
            preprocessing_version="6",
            modalities=("image", "spectrum"),
            outputs={
                "image": STRONG_IMAGE_DIM,
                "spectrum": STRONG_SPECTRUM_DIM,
                "joint": STRONG_IMAGE_DIM + STRONG_SPECTRUM_DIM + STRONG_JOINT_EXTRA,
            },
        )
    )
