"""A short contrastive retrain of the small model on synthetic data, resuming, and the CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from fmb.cli import cli
from fmb.datasets.synthetic.dataset import open_dataset
from fmb.errors import UsageError
from fmb.plugins import registry
from fmb.training import fit
from fmb_astroclip.commands import AstroClipTraining
from fmb_astroclip.retrain import make_task, mismatch_auroc

MARGIN = 0.1


def _auroc(model, dataset) -> float:
    batch = next(dataset.iter_batches(len(dataset)))
    out = model.embed(batch)
    ok = np.isfinite(out["joint"]).all(axis=1)
    return mismatch_auroc(torch.from_numpy(out["image"][ok]), torch.from_numpy(out["spectrum"][ok]), seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("retrain") / "run"
    # Faithful inputs (issue 14): a 32-px 0.1"/px stamp is ~12 px at 0.262"/px, 4 of the 144 ViT patches; the
    # random-init image head needs ~30 steps to single them out (16 steps stayed at chance, ln 32), so 10 epochs.
    cfg = AstroClipTraining(size="small", epochs=10, batch_size=32, lr=1e-3, warmup_steps=5, patience=5)
    task = make_task(cfg, open_dataset(size=160, stamp=32, seed=0), weights="random", device="cpu")
    summary = fit(task, cfg, out, log=lambda s: None)
    return out, summary


def test_retrain_lowers_validation_loss_and_writes_its_files(trained):
    out, summary = trained
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == list(range(11))  # one evaluation per epoch
    assert summary["best_val_loss"] < hist[0]["val_loss"] - MARGIN
    assert max(h["val_mismatch_auroc"] for h in hist[1:]) > hist[0]["val_mismatch_auroc"] + MARGIN
    for name in (
        "model.safetensors",
        "config.json",
        "history.json",
        "history.csv",
        "loss.png",
        "retrain.json",
        "state.pt",
    ):
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["size"] == "small" and cfg["base_weights"]["kind"] == "random"
    assert summary["weights"]["kind"] == "random"


def test_retrained_checkpoint_works_as_weights_and_detects_mismatches_better(trained):
    out, _ = trained
    spec = registry().model("astroclip")
    model = registry().load_model(spec.name, weights=str(out))
    assert model.settings()["size"] == "small" and model.weights.kind == "path" and model.weights.sha256
    fresh = registry().load_model(spec.name, weights="random", options={"size": "small"})
    held_out = open_dataset(size=64, stamp=32, seed=5)
    assert _auroc(model, held_out) > _auroc(fresh, held_out) + MARGIN


def test_resume_continues_and_refuses_to_overwrite(tmp_path, toy):
    from fmb.testing.toy import ToyDataset

    ds = ToyDataset(size=40)
    cfg = AstroClipTraining(size="small", epochs=1, batch_size=16, warmup_steps=1)

    def run(resume=False):
        return fit(
            make_task(cfg, ds, weights="random", device="cpu"), cfg, tmp_path / "r", resume=resume, log=lambda s: None
        )

    run()
    with pytest.raises(UsageError, match="--resume"):
        run()
    cfg.epochs = 2
    run(resume=True)
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1, 2]


def test_retrain_command_and_run_end_to_end(tmp_path, toy):
    assert "astroclip" in cli.commands["retrain"].list_commands(None)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "retrain",
            "astroclip",
            "--dataset",
            "toy:size=40",
            "--size",
            "small",
            "--weights",
            "random",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--output",
            str(tmp_path / "ck"),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli,
        [
            "run",
            "--model",
            "astroclip:size=small",
            "--detector",
            "iforest",
            "--dataset",
            "toy:size=64",
            "--output",
            str(tmp_path / "res"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "res" / "results.json").read_text())
    assert result["model"]["weights"]["kind"] == "random" and result["model"]["settings"]["size"] == "small"
    assert set(result["modalities"]) == {"image", "spectrum", "joint"}
    res = runner.invoke(
        cli,
        [
            "run",
            "--model",
            "astroclip",
            "--weights",
            str(tmp_path / "ck"),
            "--detector",
            "iforest",
            "--dataset",
            "toy:size=64",
            "--output",
            str(tmp_path / "res2"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "res2" / "results.json").read_text())
    assert result["model"]["weights"]["kind"] == "path" and result["model"]["settings"]["size"] == "small"
    # the provenance of retrained weights: what they were trained on, how long, and the bytes
    w = result["model"]["weights"]
    prov = w["retrained"]
    assert prov["dataset_spec"] == "toy:size=40" and prov["seed"] == 0 and prov["model"] == "astroclip"
    assert (
        prov["weights_file"] == "model.safetensors"
        and prov["steps"] == json.loads((tmp_path / "ck" / "retrain.json").read_text())["steps_run"]
    )
    sha = hashlib.sha256((tmp_path / "ck" / "model.safetensors").read_bytes()).hexdigest()
    assert prov["sha256"] == w["sha256"] == sha
    # toy:size=64 holds the training objects (ids 0..39): flagged with a count, and warned about
    trained = set(pq.read_table(tmp_path / "ck" / "objects.parquet").column("object_id").to_pylist())
    assert w["trained_on_scored_objects"] == len(trained & set(range(64))) > 0
    assert "retrained weights were trained on" in res.output.replace("\n", " ")
