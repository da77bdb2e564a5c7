"""``fmb retrain astroclip``: its training options (light: no torch), named by the spec's ``retrain``."""

from __future__ import annotations

from dataclasses import dataclass

from fmb.commands.retrain import Retrainer
from fmb.training import TrainingConfig, option


@dataclass
class AstroClipTraining(TrainingConfig):
    """AstroCLIP's defaults and the parts to train."""

    epochs: int = option(20)
    batch_size: int = option(64)
    warmup_steps: int = option(100)
    size: str | None = option(None, "official | small (default: official, or the checkpoint's).")
    unfreeze_blocks: int = option(0, "Also train the last k blocks of each backbone.")
    learnable_scale: bool = option(False, "Learn the logit scale (exp of a parameter).")
    no_amp: bool = option(False, "No bf16 autocast on GPU.")
    token_cache_gb: float = option(4.0, "Keep frozen backbone tokens in memory up to this size.")


RETRAIN = Retrainer(
    config=AstroClipTraining,
    task="fmb_astroclip.retrain:make_task",
    help="Contrastive fine-tuning of AstroCLIP's heads on DATASET; the run folder works as --weights FOLDER.",
)
