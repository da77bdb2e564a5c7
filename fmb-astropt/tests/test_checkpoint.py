"""Checkpoints: official format round trip, refusal of foreign pickles, the offline hub path, auto fallback."""

import os

import numpy as np
import pytest
import torch
from astropt_helpers import FAST, load, toy_batch

from fmb.errors import ModelError
from fmb.io import sha256_file
from fmb_astropt.checkpoint import model_args_of, read_checkpoint, save_checkpoint

SHA = "0123456789abcdef0123456789abcdef01234567"


class NotAllowed:  # a class only this test knows: a safe loader must refuse to build it
    def __init__(self):
        self.payload = "x"


def _official(path, net, prefix=""):
    """A checkpoint laid out as astropt's train.py writes it (optionally with torch.compile prefixes)."""
    ckpt = {
        "model": {prefix + k: v for k, v in net.state_dict().items()},
        "optimizer": {},
        "model_args": model_args_of(net),
        "iter_num": 10,
        "best_val_loss": 0.5,
        "config": {"lr": 6e-4},
        "modality_registry": net.modality_registry,
    }
    torch.save(ckpt, path)
    return path


def test_save_and_load_round_trip(tmp_path):
    m = load()
    f = m.save_weights(tmp_path / "w")
    again = load(weights=str(f))
    assert again.weights.kind == "path" and again.weights.sha256 == sha256_file(f)
    batch = toy_batch(6)
    a, b = m.embed(batch), again.embed(batch)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_official_layout_with_compile_prefix_loads(tmp_path):
    m = load()
    f = _official(tmp_path / "ckpt.pt", m.net, prefix="_orig_mod.")
    again = load(weights=str(tmp_path))  # a folder holding ckpt.pt
    np.testing.assert_array_equal(again.embed(toy_batch(4))["image"], m.embed(toy_batch(4))["image"])
    assert again.weights.location == str(f)


def test_a_foreign_pickled_class_is_refused(tmp_path):
    m = load()
    f = tmp_path / "evil.pt"
    torch.save(
        {**read_checkpoint(save_checkpoint(tmp_path / "ok.pt", m.net, model_args_of(m.net))), "extra": NotAllowed()}, f
    )
    with pytest.raises(ModelError, match="refusing checkpoint"):
        load(weights=str(f))


def test_explicit_size_must_match_the_weights(tmp_path):
    f = load().save_weights(tmp_path / "ckpt.pt")
    with pytest.raises(ModelError, match="size 005M"):
        load(weights=str(f), size="005M")


def _seed_hub_cache(root, net):
    snap = root / "models--Smith42--astroPT_v2.0" / "snapshots" / SHA
    (snap / "astropt" / "095M").mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    _official(snap / "astropt" / "095M" / "ckpt.pt", net)
    (root / "models--Smith42--astroPT_v2.0" / "refs").mkdir()
    (root / "models--Smith42--astroPT_v2.0" / "refs" / "main").write_text(SHA)
    return snap / "astropt" / "095M" / "ckpt.pt"


def test_auto_loads_the_official_checkpoint_from_an_offline_hub_cache(tmp_path, monkeypatch):
    src = load()
    f = _seed_hub_cache(tmp_path / "hf", src.net)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opts = {k: v for k, v in FAST.items() if k != "size"}  # no size: the default 095M file, whatever it holds
    from fmb.plugins import registry

    spec = registry().model("astropt")
    for weights in ("auto", "hf:Smith42/astroPT_v2.0"):
        m = registry().load_model(spec.name, weights=weights, options=opts)
        assert m.weights.kind == "hf" and m.weights.revision == SHA
        assert m.weights.location == "Smith42/astroPT_v2.0/astropt/095M/ckpt.pt"
        assert m.weights.sha256 == sha256_file(f) and m.settings()["size"] == "001M"
        np.testing.assert_array_equal(m.embed(toy_batch(4))["image"], src.embed(toy_batch(4))["image"])


def test_auto_with_an_empty_offline_cache_falls_back_to_random_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from fmb.plugins import registry

    spec = registry().model("astropt")
    with pytest.warns(RuntimeWarning, match="RANDOM initialisation"):
        m = registry().load_model(spec.name, weights="auto", options={"size": "095M", "image_size": 32}, seed=3)
    assert m.weights.kind == "random" and m.weights.seed == 3
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        registry().load_model(spec.name, weights="hf:Smith42/astroPT_v2.0", options={"image_size": 32})
    assert os.environ["HF_HUB_OFFLINE"] == "1"
