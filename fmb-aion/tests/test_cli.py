"""End to end: ``fmb run --model aion:size=tiny --detector iforest --dataset toy:size=48``."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fmb.cli import cli


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
def test_fmb_run_tiny_on_toy(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "res"
    args = ["run", "--model", "aion:size=tiny", "--detector", "iforest", "--dataset", "toy:size=48",
            "--output", str(out), "-q", "--no-report"]
    res = CliRunner().invoke(cli, args)
    if res.exit_code == 2 and "no-report" in res.output:  # older fmb without the report step
        res = CliRunner().invoke(cli, args[:-1])
    assert res.exit_code == 0, res.output
    result = json.loads((Path(out) / "results.json").read_text())
    assert result["model"]["weights"]["kind"] == "random" and result["model"]["weights"]["seed"] == 0
    assert result["model"]["settings"]["size"] == "tiny" and result["model"]["settings"]["bands"]["name"] == "auto"
    assert set(result["modalities"]) == {"image", "spectrum", "joint"}
    for entry in result["modalities"].values():
        assert entry["n_scored"] == 48 and 0.0 <= entry["metrics"]["auroc"] <= 1.0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and json.loads((Path(out) / "results.json").read_text())["embedding"]["reused"]
