"""Registers the astropt model (and ``fmb retrain astropt``) with FMB. Imports nothing heavy."""

from __future__ import annotations

from importlib.metadata import version

from fmb import hookimpl
from fmb.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="astropt",
        description="AstroPT (Smith et al. 2024): autoregressive transformer over image patches and spectrum patches",
        loader="fmb_astropt.model:load_model",
        version=version("fmb-astropt"),
        license="AGPL-3.0-or-later",
        citation="Smith et al. (2024), AstroPT: Scaling Large Observation Models for Astronomy, arXiv:2405.14930",
        homepage="https://github.com/Smith42/astroPT",
        modalities=("image", "spectrum"),
        outputs={"image": 768, "spectrum": 768, "joint": 768},
        weights=("hf:Smith42/astroPT_v2.0",),
        default_options={"size": "095M", "layer": "middle", "pooling": "mean"},
    ))


@hookimpl
def register_commands(cli):
    from fmb_astropt.cli import add_retrain_command

    add_retrain_command(cli)
