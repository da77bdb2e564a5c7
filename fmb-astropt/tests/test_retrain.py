"""``fmb retrain astropt``: a short run lowers the validation loss and writes a loadable checkpoint."""

import json
import sys

import numpy as np
from astropt_helpers import load, toy_batch
from click.testing import CliRunner

from fmb.cli import cli
from fmb.plugins import get_plugin_manager


def test_short_retrain_lowers_validation_loss(toy, tmp_path):
    get_plugin_manager().hook.register_commands(cli=cli)
    out = tmp_path / "retrained"
    res = CliRunner().invoke(cli, ["retrain", "astropt", "--dataset", "toy:size=48",
                                   "--model", "astropt:size=001M,image_size=32", "--weights", "random",
                                   "--output", str(out), "--max-steps", "24", "--batch-size", "8", "--lr", "2e-3",
                                   "--warmup", "4", "--eval-every", "8", "--val-fraction", "0.25", "-q"])
    assert res.exit_code == 0, res.output
    hist = json.loads((out / "history.json").read_text())
    assert hist["best_val_loss"] < hist["initial_val_loss"]
    assert hist["n_val"] == 12 and hist["evals"][0]["step"] == 0
    assert [e["lr"] for e in hist["train_loss"]][:4] == [5e-4, 1e-3, 1.5e-3, 2e-3]  # warm-up
    m = load(weights=str(out / "ckpt.pt"), image_size=32)
    assert m.weights.kind == "path"
    assert not np.allclose(m.embed(toy_batch(4))["image"], load(image_size=32).embed(toy_batch(4))["image"])
    assert "torchvision" not in sys.modules
