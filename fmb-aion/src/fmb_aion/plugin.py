"""Registers the aion model and the ``fmb retrain aion`` command with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="aion",
        description=("AION-1 (Polymathic AI 2025): multimodal tokenised foundation model"
                     " (polymathic-aion codecs + encoder); options size=base|tiny, bands=hsc|legacy, adapter=PATH"),
        loader="fmb_aion.model:load_model",
        version=version("fmb-aion"),
        license="MIT",
        citation="Parker et al. (2025), AION-1: Omnimodal Foundation Model for Astronomical Sciences, arXiv:2510.17960",
        homepage="https://github.com/PolymathicAI/AION",
        modalities=("image", "spectrum"),
        outputs={"image": 768, "spectrum": 768, "joint": 768},
        weights=("hf:polymathic-ai/aion-base",),
    ))


@hookimpl
def register_commands(cli):
    from fmb_aion.commands import add_to

    add_to(cli)
