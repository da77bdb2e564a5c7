"""``fmb retrain astropt``: its training options (light: no torch), named by the spec's ``retrain``."""

from __future__ import annotations

from dataclasses import dataclass

from fmb.commands.retrain import Retrainer
from fmb.training import TrainingConfig, option


@dataclass
class AstroPTTraining(TrainingConfig):
    """astropt's defaults (a few thousand objects on a CPU) and the model to start from."""

    epochs: int = option(100, "Passes over the training objects.")
    max_steps: int = option(500, "Stop after this many optimiser steps (0 = the epochs decide).")
    batch_size: int = option(16, "Objects per optimiser step.")
    lr: float = option(3e-4, "Peak learning rate (AdamW).")
    weight_decay: float = option(0.1, "AdamW weight decay (on weights of 2 or more dimensions only).")
    val_fraction: float = option(0.1, "Fraction of objects held out for validation (split by object id).")
    eval_every: int = option(25, "Evaluate every N optimiser steps (0 = at the end of each epoch).")
    patience: int = option(4, "Stop after this many evaluations without improvement (0 = never).")
    min_delta: float = option(0.0, "Smallest fall of the validation loss that counts as an improvement.")
    model: str = option("astropt", "astropt[:size=001M,...]: the model options, as for fmb run.")


RETRAIN = Retrainer(
    config=AstroPTTraining, task="fmb_astropt.retrain:make_task",
    help="Continue training AstroPT (its next-token Huber loss) on DATASET; writes ckpt.pt (load it with "
         "--weights FOLDER).")
