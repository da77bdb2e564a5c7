"""Registers the aion model and the ``fmb retrain aion`` command with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.contracts import Band, ImageContract, InputContract, SpectrumContract
from fmb.specs import ModelSpec

_UP = "polymathic-aion 0.0.2 (PyPI)"
#: What AION-1's codecs were trained on (HSC image branch, FMB's default ``bands=hsc``; the Legacy Survey
#: branch takes DES-G/R/I/Z at 0.262"/px). fmb-aion adapts images to it: bands=auto, resampling to the
#: survey scale (issue 14).
INPUT_CONTRACT = InputContract(
    image=ImageContract(
        bands=(
            Band("HSC-G", 479.8),
            Band("HSC-R", 621.8),
            Band("HSC-I", 772.7),
            Band("HSC-Z", 890.8),
            Band("HSC-Y", 977.5),
        ),  # Subaru/HSC lambda_mean (SVO filter service)
        pixel_scale_arcsec=0.168,
        stamp_size=96,
        flux_unit="nanomaggies",
        zero_point=22.5,
        orientation="natural: codec input [B, band, row, col] as the survey cutout (no transpose in the codec)",
        stretch=(
            "none outside the codec: HSC flux (zero point 27) divided by 10**((27-22.5)/2.5) to nanomaggies, "
            "clamped per band to +-BAND_CENTER_MAX (HSC-G 80, R 110, I 200, Z 330, Y 500)"
        ),
        source=(
            f"{_UP} aion/codecs/image.py:44 (CenterCrop 96), 99-109 (crop, clamp, rescale, pad); "
            "aion/codecs/preprocessing/image.py:58-102; aion/codecs/preprocessing/band_to_index.py:2-24; "
            'HSC-SSP pixel scale 0.168"/px (Aihara et al. 2018, PASJ 70, S4)'
        ),
    ),
    spectrum=SpectrumContract(
        wavelength_min_aa=3500.0,
        wavelength_max_aa=3500.0 + 0.8 * 8703,
        pixel_aa=0.8,
        grid="latent grid 3500 + 0.8 i A, 8704 px (spectra interpolated onto it by the codec)",
        resolution="R ~ 2000-5500 (DESI), ~1500-2500 (SDSS/BOSS)",
        flux_unit="1e-17 erg/s/cm2/A",
        normalisation="divided by the masked mean flux (clamped at 0.1); log10(norm + 1) quantised as a token",
        source=f"{_UP} aion/codecs/spectrum.py:23-25 (grid), 74-87 (normalisation)",
    ),
)


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="aion",
            description=(
                "AION-1 (Polymathic AI 2025): multimodal tokenised foundation model"
                " (polymathic-aion codecs + encoder); options size=base|tiny, bands=hsc|legacy, adapter=PATH"
            ),
            loader="fmb_aion.model:load_model",
            version=version("fmb-aion"),
            license="MIT",
            citation=(
                "Parker et al. (2025), AION-1: Omnimodal Foundation Model for Astronomical Sciences, arXiv:2510.17960"
            ),
            homepage="https://github.com/PolymathicAI/AION",
            modalities=("image", "spectrum"),
            outputs={"image": 768, "spectrum": 768, "joint": 768},
            weights=("hf:polymathic-ai/aion-base",),
            input_contract=INPUT_CONTRACT,
            retrain="fmb_aion.commands:RETRAIN",
        )
    )
