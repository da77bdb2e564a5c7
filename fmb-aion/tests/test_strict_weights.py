"""Weights load strictly: encoder, both codecs and the adapter refuse a renamed, dropped, extra or
wrong-shape tensor with one line naming the key; a refused folder leaves no results behind."""

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fmb.errors import ModelError
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb.testing.weights import assert_one_line_naming, assert_run_refuses_weights, weight_faults
from fmb_aion import weights as W
from fmb_aion.adapter import EuclidHSCAdapter, load_adapter, save_adapter

from .conftest import COMMIT

FILES = {
    "encoder": "model.safetensors",
    "image": "codecs/image/model.safetensors",
    "spectrum": "codecs/spectrum/model.safetensors",
}


def _load(weights, **options):
    spec = registry().model("aion")
    return registry().load_model(spec.name, weights=weights, options=options, seed=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_parts):
    return W.save_folder(tmp_path_factory.mktemp("aion") / "good", *tiny_parts)


def _corrupt(saved, dest, part, state):
    folder = shutil.copytree(saved, dest)
    save_file(state, str(folder / FILES[part]))
    return folder


@pytest.mark.parametrize("fault", ["renamed", "dropped", "extra", "wrong_shape"])
def test_encoder_faults_are_refused(saved, tmp_path, fault):
    state, key = weight_faults(load_file(str(saved / FILES["encoder"])))[fault]
    folder = _corrupt(saved, tmp_path / "bad", "encoder", state)
    with pytest.raises(ModelError) as exc:
        W.resolve(str(folder))
    assert_one_line_naming(exc, "aion", key, str(folder / FILES["encoder"]))


@pytest.mark.parametrize(
    ("part", "fault"), [("image", "renamed"), ("image", "wrong_shape"), ("spectrum", "dropped"), ("spectrum", "extra")]
)
def test_codec_faults_are_refused(saved, tmp_path, part, fault):
    state, key = weight_faults(load_file(str(saved / FILES[part])))[fault]
    folder = _corrupt(saved, tmp_path / "bad", part, state)
    with pytest.raises(ModelError) as exc:
        W.resolve(str(folder))
    assert_one_line_naming(exc, "aion", key, FILES[part])


def test_every_key_renamed_no_longer_loads_as_random(saved, tmp_path):
    state = load_file(str(saved / FILES["encoder"]))
    folder = _corrupt(saved, tmp_path / "bad", "encoder", {f"renamed.{k}": v for k, v in state.items()})
    with pytest.raises(ModelError) as exc:
        W.resolve(str(folder))
    msg = assert_one_line_naming(exc, "aion", f"{len(state) + 3} missing", f"{len(state)} unexpected", " more")
    assert msg.count(", ") < 20  # five names of each kind, not hundreds


def test_a_correct_folder_gives_the_embeddings_of_the_saved_modules(tmp_path):
    m = _load("random", size="tiny")
    folder = m.save_weights(tmp_path / "snap")
    again = _load(str(folder))
    assert again.weights.kind == "path" and again.weights.sha256 == W.folder_sha256(folder)
    batch = next(ToyDataset(size=3).iter_batches(3))
    a, b = m.embed(batch), again.embed(batch)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(b[k], a[k])


@pytest.mark.parametrize("fault", ["renamed", "dropped", "extra", "wrong_shape"])
def test_adapter_faults_are_refused(tmp_path, fault):
    torch.manual_seed(0)
    good = save_adapter(EuclidHSCAdapter(), tmp_path / "a.pt", {})
    blob = torch.load(good, weights_only=True)
    blob["to_euclid"], key = weight_faults(blob["to_euclid"])[fault]
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(ModelError) as exc:
        load_adapter(tmp_path / "bad.pt")
    assert_one_line_naming(exc, "aion", key, "to_euclid", str(tmp_path / "bad.pt"))


def test_run_with_a_bad_folder_exits_2_and_writes_no_results(saved, tmp_path, toy):
    state, key = weight_faults(load_file(str(saved / FILES["encoder"])))["renamed"]
    folder = _corrupt(saved, tmp_path / "bad", "encoder", state)
    assert_run_refuses_weights("aion", folder, tmp_path / "res", key)


def test_auto_refuses_cached_weights_that_do_not_load_instead_of_going_random(seeded_hub, tmp_path, monkeypatch):
    cache = shutil.copytree(seeded_hub, tmp_path / "hub")
    snap = cache / "models--polymathic-ai--aion-base" / "snapshots" / COMMIT
    state, key = weight_faults(load_file(str(snap / FILES["spectrum"])))["dropped"]
    save_file(state, str(snap / FILES["spectrum"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelError) as exc:
        W.resolve("auto")
    assert_one_line_naming(exc, "aion", key, FILES["spectrum"])
