"""Registers the AstroCLIP models and the ``retrain astroclip`` command with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.specs import ModelSpec

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
    register(ModelSpec(
        name="astroclip",
        description=("AstroCLIP (Parker et al. 2024): contrastive image (DINOv2 ViT-L/12) and spectrum"
                     " (SpecFormer) encoders in a shared 1024-d space; options size=official|small"),
        version=v, outputs={"image": 1024, "spectrum": 1024, "joint": 1024},
        weights=("hf:polymathic-ai/astroclip",), **_COMMON))
    register(ModelSpec(
        name="astroclip-small",
        description="AstroCLIP architecture at a CPU-trainable size (128-d space; no published weights)",
        version=v, outputs={"image": 128, "spectrum": 128, "joint": 128},
        default_options={"size": "small"}, **_COMMON))


@hookimpl
def register_commands(cli):
    from fmb_astroclip.commands import add_retrain_command

    add_retrain_command(cli)
