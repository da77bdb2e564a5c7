"""Registers the AstroCLIP model (and, through ``retrain=``, ``fmb retrain astroclip``). Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.contracts import Band, ImageContract, InputContract, SpectrumContract
from fmb.specs import ModelSpec

_UP = "PolymathicAI/AstroCLIP@9d85069"
#: What AstroCLIP's authors fed the network (see external/astroclip.md for the reading).
INPUT_CONTRACT = InputContract(
    image=ImageContract(
        bands=(Band("g", 482.7), Band("r", 643.2), Band("z", 917.9)),  # DECam lambda_mean (SVO filter service)
        pixel_scale_arcsec=0.262,
        stamp_size=144,
        native_stamp_size=152,
        flux_unit="nanomaggies",
        zero_point=22.5,
        orientation=(
            "natural: network input [C, row, col] = the survey cutout's [band, row, col] (the export's .T, "
            "ToRGB's transpose and the collator's permute(0, 3, 2, 1) cancel out)"
        ),
        stretch=(
            "Legacy Survey viewer arcsinh RGB: I = mean_b max(0, scale_b x_b + 0.03), "
            "plane_b = (scale_b x_b + 0.03) asinh(20 I) / (sqrt(20) I), clipped to [0, 1]; "
            "scales g 6.0, r 3.4, z 2.2; planes 0, 1, 2 = z, r, g"
        ),
        source=(
            f"{_UP} scripts/export_data.py:31-37 (152-px grz cutouts, stored .T); "
            "astroclip/astrodino/data/augmentations.py:132-183 (ToRGB); "
            "astroclip/data/datamodule.py:49-69 (AstroClipCollator: ToRGB, permute(0,3,2,1), CenterCrop(144)); "
            'Legacy Survey DR9 images: 0.262"/px, nanomaggies (AB zero point 22.5), '
            "https://www.legacysurvey.org/dr9/description/; Parker et al. 2024, MNRAS 531, 4990"
        ),
    ),
    spectrum=SpectrumContract(
        wavelength_min_aa=3600.0,
        wavelength_max_aa=9824.0,
        pixel_aa=0.8,
        grid="DESI coadd: 3600 + 0.8 i A, 7781 px",
        resolution="R ~ 2000-5500 (DESI)",
        flux_unit="1e-17 erg/s/cm2/A",
        normalisation=(
            "none outside the network: SpecFormer.preprocess standardises each spectrum "
            "((x - mean) / max(std, 0.2)) and prepends mean/std tokens"
        ),
        source=(
            f"{_UP} astroclip/data/dataset.py:59 (spectrum Array2D (7781, 1)); "
            "astroclip/models/specformer.py:119-126 (preprocess); DESI EDR coadds (DESI Collaboration 2023)"
        ),
    ),
)

_COMMON = {
    "loader": "fmb_astroclip.model:load_model",
    "license": "MIT",
    "citation": "Parker et al. (2024), AstroCLIP: a cross-modal foundation model for galaxies, MNRAS 531, 4990",
    "homepage": "https://github.com/PolymathicAI/AstroCLIP",
    "modalities": ("image", "spectrum"),
}


@hookimpl
def register_models(register):
    v = version("fmb-astroclip")
    register(
        ModelSpec(
            name="astroclip",
            description=(
                "AstroCLIP (Parker et al. 2024): contrastive image (DINOv2 ViT-L/12) and spectrum"
                " (SpecFormer) encoders in a shared 1024-d space; option size=official|small (small: 128-d)"
            ),
            version=v,
            outputs={"image": 1024, "spectrum": 1024, "joint": 1024},
            weights=("hf:polymathic-ai/astroclip",),
            input_contract=INPUT_CONTRACT,
            shared_space=True,
            retrain="fmb_astroclip.commands:RETRAIN",
            **_COMMON,
        )
    )
