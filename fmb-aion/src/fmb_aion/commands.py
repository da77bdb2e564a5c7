"""``fmb retrain aion``: its training options (light: no torch, no aion), named by the spec's ``retrain``.

It trains the Euclid -> HSC image adapter through the frozen AION image codec, AION's transformer, or its
codecs (``--part adapter | encoder | codecs``; :mod:`fmb_aion.retrain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fmb.commands.retrain import Retrainer
from fmb.training import TrainingConfig, option


@dataclass
class AionTraining(TrainingConfig):
    """The adapter's defaults; ``size`` picks the codec for random weights."""

    epochs: int = option(3)
    batch_size: int = option(8)
    warmup_steps: int = option(0)
    weight_decay: float = option(0.0)
    size: str | None = option(None, "Codec size for random weights: base | tiny (default base).")
    part: str = option(
        "adapter",
        "adapter: the Euclid->HSC image adapter (cycle loss); encoder: AION's transformer (cross-modal token "
        "prediction, codecs frozen; the run folder works as --weights FOLDER); codecs: AION's image and spectrum "
        "tokenizers (reconstruction through their quantisers, transformer untouched; then --part encoder "
        "--weights FOLDER trains the transformer on the new tokens).",
    )
    objective: str = option(
        "cross+masked",
        "part=encoder: cross (each modality's tokens from the other's) or cross+masked (also each modality's "
        "hidden half from its visible half, as AION's own training).",
    )


#: how each part's run folder is used (``fmb retrain`` prints it after training; {out}: the run folder)
USAGE = {
    "adapter": "fmb run --model aion:adapter={out} ...",
    "encoder": "fmb run --model aion --weights {out} ...",
    "codecs": "fmb run --model aion --weights {out} ..., or fmb retrain aion --part encoder --weights {out} ...",
}


def usage(cfg: AionTraining) -> str:
    """The use of the run folder of ``cfg.part`` (an adapter is a model option; a snapshot is ``--weights``)."""
    return USAGE[cfg.part]


RETRAIN = Retrainer(
    config=AionTraining,
    task="fmb_aion.retrain:make_task",
    help="Train AION's Euclid->HSC image adapter (--part adapter: use as aion:adapter=FOLDER), its "
    "transformer (--part encoder: cross-modal token prediction; use as --weights FOLDER) or its codecs "
    "(--part codecs: reconstruction; use as --weights FOLDER, e.g. for --part encoder).",
    usage=usage,
)
