"""Registers the AstroCLIP model and the ``retrain astroclip`` command with FMB. Imports nothing heavy."""

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
                     " (SpecFormer) encoders in a shared 1024-d space; option size=official|small (small: 128-d)"),
        version=v, outputs={"image": 1024, "spectrum": 1024, "joint": 1024},
        weights=("hf:polymathic-ai/astroclip",), **_COMMON))


@hookimpl
def register_commands(cli):
    if cli is None or not hasattr(cli, "commands"):
        return
    from fmb_astroclip.commands import add_retrain_command

    add_retrain_command(cli)
