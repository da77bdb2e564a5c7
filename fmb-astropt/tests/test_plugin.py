"""Registration, the CLI end to end, and no torchvision."""

import json
import sys

from click.testing import CliRunner

from fmb.cli import cli
from fmb.plugins import registry


def test_registered_through_entry_point():
    spec = registry().model("astropt")
    assert spec.source.startswith("fmb-astropt")
    assert spec.license == "AGPL-3.0-or-later"
    assert set(spec.outputs) == {"image", "spectrum", "joint"}


def test_fmb_run_end_to_end(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "astropt:size=001M",
            "--detector",
            "iforest",
            "--dataset",
            "toy:size=48",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((out / "results.json").read_text())
    assert result["model"]["weights"]["kind"] == "random"
    text = json.dumps(result)
    for key in ('"image"', '"spectrum"', '"joint"'):
        assert key in text
    assert "torchvision" not in sys.modules


def test_retrain_subcommand_comes_from_the_spec():
    group = cli.commands["retrain"]
    assert "astropt" in group.list_commands(None)
    res = CliRunner().invoke(cli, ["retrain", "astropt", "--help"])
    assert res.exit_code == 0 and "--warmup-steps" in res.output and "--model" in res.output
