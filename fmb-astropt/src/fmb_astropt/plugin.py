"""Registers the astropt model (and ``fmb retrain astropt``) with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.contracts import Band, ImageContract, InputContract
from fmb.specs import ModelSpec

#: What astroPT v2.0's authors trained on: image-only (no spectrum contract; the spectrum branch of
#: the official weights is untrained). fmb-astropt renders images to it: fmb_astropt/preprocess.py (issue 14).
INPUT_CONTRACT = InputContract(
    image=ImageContract(
        # JPEG planes R, G, B of the Legacy Survey viewer composite are z, r, g (DECam lambda_mean, SVO)
        bands=(Band("z", 917.9), Band("r", 643.2), Band("g", 482.7)),
        pixel_scale_arcsec=0.262,
        stamp_size=256,
        flux_unit="8-bit sRGB JPEG (0-255)",
        zero_point=None,
        orientation="as torchvision.io.read_image reads the JPEG: [C, row, col]",
        stretch=(
            "Legacy Survey viewer RGB JPEG (8-bit); patches of 16 x 16 x 3 flattened (p1 p2 c), "
            "standardised per patch by the training transform, spiral order"
        ),
        source=(
            "astropt 2.0.9 astropt/local_datasets.py:118-132 (patching), 203-206 (JPEG read); "
            "hub Smith42/astroPT_v2.0 (ckpt config: patch 16) and dataset Smith42/galaxies (DESI Legacy Survey "
            "JPEGs, 256 px); Smith et al. 2024, arXiv:2405.14930. NOTE: those cutouts are cropped and zoomed "
            "per galaxy; 0.262\"/px is the survey's native scale, a nominal value not verified here"
        ),
    ),
)


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="astropt",
            description=(
                "AstroPT (Smith et al. 2024): autoregressive transformer over image patches and spectrum patches"
            ),
            loader="fmb_astropt.model:load_model",
            version=version("fmb-astropt"),
            license="AGPL-3.0-or-later",
            citation="Smith et al. (2024), AstroPT: Scaling Large Observation Models for Astronomy, arXiv:2405.14930",
            homepage="https://github.com/Smith42/astroPT",
            modalities=("image", "spectrum"),
            outputs={"image": 768, "spectrum": 768, "joint": 768},
            weights=("hf:Smith42/astroPT_v2.0",),
            default_options={"size": "095M", "layer": "middle", "pooling": "mean"},
            input_contract=INPUT_CONTRACT,
            retrain="fmb_astropt.commands:RETRAIN",
        )
    )
