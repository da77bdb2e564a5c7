"""Registers the astroclip model with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="astroclip",
        description=("AstroCLIP (Parker et al. 2024): contrastive image (DINOv2 ViT) and"
                     " spectrum (SpecFormer) encoders in a shared space"),
        loader="fmb_astroclip.model:load_model",
        version=version("fmb-astroclip"),
        license="MIT",
        citation="Parker et al. (2024), AstroCLIP: a cross-modal foundation model for galaxies, MNRAS 531, 4990",
        homepage="https://github.com/PolymathicAI/AstroCLIP",
        modalities=("image", "spectrum"),
        outputs={"image": 1024, "spectrum": 1024, "joint": 1024},
        weights=("hf:polymathic-ai/astroclip",),
    ))
