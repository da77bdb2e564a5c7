"""``fmb retrain astropt``: its training options (light: no torch), named by the spec's ``retrain``."""

from __future__ import annotations

from dataclasses import dataclass

from fmb.commands.retrain import Retrainer
from fmb.training import TrainingConfig, option


@dataclass
class AstroPTTraining(TrainingConfig):
    """astropt's defaults (a few thousand objects on a CPU) and the model to start from."""

    epochs: int = option(100)
    max_steps: int = option(500)
    batch_size: int = option(16)
    lr: float = option(3e-4)
    weight_decay: float = option(0.1)
    val_fraction: float = option(0.1)
    eval_every: int = option(25)
    patience: int = option(4)
    min_delta: float = option(0.0)
    model: str = option("astropt", "astropt[:size=001M,...]: the model options, as for fmb run.")


RETRAIN = Retrainer(
    config=AstroPTTraining,
    task="fmb_astropt.retrain:make_task",
    help="Continue training AstroPT (its next-token Huber loss) on DATASET; writes ckpt.pt (load it with "
    "--weights FOLDER).",
)
