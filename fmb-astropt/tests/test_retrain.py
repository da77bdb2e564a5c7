"""``fmb retrain astropt``: a short run lowers the validation loss and writes a loadable checkpoint."""

import json
import sys

import numpy as np
from astropt_helpers import load, toy_batch
from click.testing import CliRunner

from fmb.cli import cli


def test_short_retrain_lowers_validation_loss(toy, tmp_path):
    out = tmp_path / "retrained"
    res = CliRunner().invoke(
        cli,
        [
            "retrain",
            "astropt",
            "--dataset",
            "toy:size=48",
            "--model",
            "astropt:size=001M,image_size=32",
            "--weights",
            "random",
            "--output",
            str(out),
            "--max-steps",
            "24",
            "--batch-size",
            "8",
            "--lr",
            "2e-3",
            "--warmup-steps",
            "4",
            "--eval-every",
            "8",
            "--val-fraction",
            "0.25",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["best_val_loss"] < summary["initial_val_loss"]
    assert summary["n_val"] == 12 and summary["steps_run"] == 24
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [0, 8, 16, 24]
    assert hist[1]["lr"] < 2e-3  # the cosine has started to decay by step 8
    m = load(weights=str(out), image_size=32)
    assert m.weights.kind == "path"
    assert not np.allclose(m.embed(toy_batch(4))["image"], load(image_size=32).embed(toy_batch(4))["image"])
    assert "torchvision" not in sys.modules
