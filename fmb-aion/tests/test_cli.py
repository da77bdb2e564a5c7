"""End to end: ``fmb run --model aion:size=tiny --detector iforest --dataset toy:size=48``."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.data import canonical as C


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
def test_fmb_run_tiny_on_toy(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "res"
    args = [
        "run",
        "--model",
        "aion:size=tiny",
        "--detector",
        "iforest",
        "--dataset",
        "toy:size=48",
        "--output",
        str(out),
        "-q",
        "--no-report",
    ]
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


@pytest.mark.filterwarnings("ignore::fmb_aion.weights.RandomWeightsWarning")
def test_fmb_run_tiny_on_a_legacy_survey_parquet_file(tmp_path, monkeypatch):
    """A Legacy Survey g,r,i,z cutout file (canonical band names, 0.262"/px) goes into AION's own
    Legacy Survey slots (DES-G..DES-Z, ``tok_image``) at its native scale."""
    from fmb.params import parse_spec
    from fmb.plugins import registry
    from fmb.protocol.run import open_dataset
    from fmb.testing.survey_table import survey_table, write_table
    from fmb_aion.model import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = write_table(survey_table(n=24, n_anom=3, size=32), tmp_path / "ls.parquet")
    spec += ",image_bands=[g,r,i,z],pixel_scale=0.262"
    out = tmp_path / "res"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "aion:size=tiny",
            "--detector",
            "iforest",
            "--dataset",
            spec,
            "--output",
            str(out),
            "-q",
            "--no-report",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((out / "results.json").read_text())
    assert result["model"]["settings"]["preprocess"] == 2
    for entry in result["modalities"].values():
        assert entry["n_scored"] == 24 and 0.0 <= entry["metrics"]["auroc"] <= 1.0
    name, options = parse_spec(spec, "dataset")
    batch = next(open_dataset(registry(), name, options).iter_batches(4))
    model = load_model(registry().model("aion"), weights="random", options={"size": "tiny"})
    flux, codec_bands, mapping, valid = model.codec_inputs(batch)
    assert mapping.name == "legacy" and mapping.token_key == "tok_image" and valid.all()
    assert codec_bands == ["DES-G", "DES-R", "DES-I", "DES-Z"]
    # native scale: the 32 px stamps sit unresampled in the middle of the 96 px codec stamp
    raw = C.column_array(batch, C.IMAGE)
    np.testing.assert_array_equal(flux.numpy()[:, :, 32:64, 32:64], raw)
