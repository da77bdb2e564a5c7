"""``fmb retrain aion``: its training options (light: no torch, no aion), named by the spec's ``retrain``.

It trains the Euclid -> HSC image adapter through the frozen AION image codec (:mod:`fmb_aion.retrain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fmb.commands.retrain import Retrainer
from fmb.training import TrainingConfig, option


@dataclass
class AionTraining(TrainingConfig):
    """The adapter's defaults; ``size`` picks the codec for random weights."""

    epochs: int = option(3, "Passes over the training objects.")
    batch_size: int = option(8, "Objects per optimiser step.")
    warmup_steps: int = option(0, "Linear warm-up, in optimiser steps.")
    weight_decay: float = option(0.0, "AdamW weight decay (on weights of 2 or more dimensions only).")
    size: str | None = option(None, "Codec size for random weights: base | tiny (default base).")


RETRAIN = Retrainer(
    config=AionTraining, task="fmb_aion.retrain:make_task",
    help="Train AION's learned Euclid->HSC image adapter (cycle loss through the frozen image codec).",
    usage="fmb run --model aion:adapter={out} ...")
