"""Weights load strictly: retrained safetensors, Lightning checkpoints and backbone files refuse a renamed,
dropped, extra or wrong-shape tensor with one line naming the key; a refused file leaves no results behind."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fmb.errors import ModelError
from fmb.io import sha256_file
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb.testing.weights import assert_one_line_naming, assert_run_refuses_weights, weight_faults

FAULTS = ["renamed", "dropped", "extra", "wrong_shape"]


def _load(weights, **options):
    spec = registry().model("astroclip")
    return registry().load_model(spec.name, weights=weights, options=options, seed=0)


@pytest.fixture(scope="module")
def small():
    return _load("random", size="small")


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    return small.save_weights(tmp_path_factory.mktemp("astroclip") / "good")


@pytest.mark.parametrize("fault", FAULTS)
def test_retrained_safetensors_faults_are_refused(saved, tmp_path, fault):
    folder = shutil.copytree(saved, tmp_path / "bad")
    state, key = weight_faults(load_file(str(saved / "model.safetensors")))[fault]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelError) as exc:
        _load(str(folder))
    assert_one_line_naming(exc, "astroclip", key, str(folder / "model.safetensors"))


@pytest.mark.parametrize("fault", FAULTS)
def test_lightning_checkpoint_faults_are_refused(small, tmp_path, fault):
    state, key = weight_faults(small.net.state_dict(), key="spectrum_encoder.mlp.decoder.weight")[fault]
    torch.save({"epoch": 1, "state_dict": state}, tmp_path / "astroclip.ckpt")
    with pytest.raises(ModelError) as exc:
        _load(str(tmp_path / "astroclip.ckpt"), size="small")
    assert_one_line_naming(exc, "astroclip", key, "astroclip.ckpt")


def test_backbone_checkpoint_with_a_wrong_shape_is_refused(small, tmp_path):
    backbone = small.net.spectrum_encoder.backbone.state_dict()
    state, _ = weight_faults(backbone, key="head.weight")["wrong_shape"]
    torch.save({"state_dict": state}, tmp_path / "specformer.ckpt")
    with pytest.raises(ModelError) as exc:
        _load(str(tmp_path / "specformer.ckpt"), size="small")
    assert_one_line_naming(
        exc, "astroclip", "head.weight [23, 64] vs model [22, 64]", "spectrum_encoder.backbone", "size="
    )


def test_a_correct_file_gives_the_embeddings_of_the_saved_model(small, saved):
    again = _load(str(saved))
    assert again.weights.kind == "path" and again.weights.sha256 == sha256_file(saved / "model.safetensors")
    batch = next(ToyDataset(size=4).iter_batches(4))
    a, b = small.embed(batch), again.embed(batch)
    assert set(a) == set(b) == {"image", "spectrum", "joint"}
    for k in a:
        np.testing.assert_array_equal(b[k], a[k])


def test_run_with_a_bad_file_exits_2_and_writes_no_results(saved, tmp_path, toy):
    folder = shutil.copytree(saved, tmp_path / "bad")
    state, key = weight_faults(load_file(str(saved / "model.safetensors")))["dropped"]
    save_file(state, str(folder / "model.safetensors"))
    assert_run_refuses_weights("astroclip", folder, tmp_path / "res", key)
