"""After `fmb retrain aion`, the printed use of the run folder is the right one for the part trained: an adapter is
the model option ``adapter=FOLDER``; encoder and codecs folders are AION snapshots, loaded with ``--weights``."""

import pytest

from fmb.training import config_from_options
from fmb_aion.commands import RETRAIN, AionTraining


def _hint(part: str) -> str:
    cfg = config_from_options(AionTraining, {"part": part})
    usage = RETRAIN.usage(cfg) if callable(RETRAIN.usage) else RETRAIN.usage  # as core's `fmb retrain` prints it
    return usage.format(model="aion", out="RUN")


@pytest.mark.parametrize("part", ["encoder", "codecs"])
def test_snapshot_parts_are_used_as_weights(part):
    hint = _hint(part)
    assert "--weights RUN" in hint and "adapter=" not in hint


def test_adapter_is_used_as_the_adapter_option():
    hint = _hint("adapter")
    assert "aion:adapter=RUN" in hint and "--weights RUN" not in hint
