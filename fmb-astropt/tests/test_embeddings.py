"""Embeddings: shapes, determinism, batch invariance, layer truncation, modality isolation, NaN rows."""

import numpy as np
import pytest
import torch
from astropt_helpers import image_of, load, replace_column, toy_batch

from fmb.data import canonical as C
from fmb.errors import ModelError
from fmb.protocol.embed import cache_key
from fmb.testing.toy import ToyDataset


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def batch():
    return toy_batch(8)


def test_shapes_dtypes_and_outputs(model, batch):
    emb = model.embed(batch)
    assert model.outputs == {"image": 128, "spectrum": 128, "joint": 128}
    for key, dim in model.outputs.items():
        assert emb[key].shape == (8, dim) and emb[key].dtype == np.float32
        assert np.isfinite(emb[key]).all()
    assert model.weights.kind == "random" and model.weights.seed == 0


def test_settings_hold_what_changes_embeddings(model):
    s = model.settings()
    assert {"size": "001M", "layer": 2, "pooling": "mean", "image_size": 64}.items() <= s.items()
    assert s["modalities"] == ["images", "spectra"]


def test_deterministic(model, batch):
    a, b = model.embed(batch), load().embed(batch)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_batch_invariant(model, batch):
    whole = model.embed(batch)
    parts = [model.embed(batch.slice(i, 3)) for i in range(0, 8, 3)]
    for k in whole:
        np.testing.assert_allclose(np.vstack([p[k] for p in parts]), whole[k], rtol=1e-4, atol=1e-5)


def test_missing_spectrum_gives_nan_rows(model, batch):
    mask = C.column_array(batch, C.MASK, bool).copy()
    mask[[1, 5]] = True
    emb = model.embed(replace_column(batch, C.MASK, mask))
    for k in ("spectrum", "joint"):
        assert np.isnan(emb[k][[1, 5]]).all() and np.isfinite(np.delete(emb[k], [1, 5], axis=0)).all()
    assert np.isfinite(emb["image"]).all()


def test_spectrum_does_not_see_the_image(model, batch):
    before = model.embed(batch)
    after = model.embed(replace_column(batch, C.IMAGE, image_of(batch)[::-1] * 3.0 + 1.0))
    np.testing.assert_array_equal(before["spectrum"], after["spectrum"])
    assert not np.allclose(before["image"], after["image"])
    assert not np.allclose(before["joint"], after["joint"])


def test_image_from_joint_pass_equals_an_image_only_pass(model, batch):
    from fmb_astropt.encode import hidden_states, pool

    ti, pi = model.image_inputs(batch)
    with torch.inference_mode():
        alone = pool(hidden_states(model.net, [("images", ti, pi)], model.layer), "mean").numpy()
    np.testing.assert_allclose(model.embed(batch)["image"], alone, rtol=1e-4, atol=1e-5)


def _count_block_calls(model, monkeypatch):
    calls = [0] * len(model.net.transformer.h)
    for i, block in enumerate(model.net.transformer.h):
        orig = block.forward

        def spy(*a, _i=i, _orig=orig, **kw):
            calls[_i] += 1
            return _orig(*a, **kw)

        monkeypatch.setattr(block, "forward", spy)
    return calls


@pytest.mark.parametrize(("layer", "ran"), [("middle", 3), (0, 1), ("last", 4)])
def test_layer_choice_skips_later_blocks(layer, ran, batch, monkeypatch):
    m = load(layer=layer)
    calls = _count_block_calls(m, monkeypatch)
    m.embed(batch)
    passes = calls[0]
    assert passes == 2  # the spectrum pass and the joint (image + spectrum) pass
    assert calls == [passes] * ran + [0] * (4 - ran)


def test_layer_and_pooling_change_the_cache_key(batch):
    ds = ToyDataset(size=8)
    keys = {cache_key(load(**o), ds)[0] for o in ({}, {"layer": 1}, {"pooling": "last"}, {"image_size": 32})}
    assert len(keys) == 4


def test_pooling_options(batch):
    a, b = load(pooling="exp_decay").embed(batch), load(pooling="last").embed(batch)
    assert a["image"].shape == b["image"].shape == (8, 128)
    assert not np.allclose(a["image"], b["image"])


def test_image_only_dataset_gives_image_output(model, batch):
    emb = model.embed(batch.drop_columns([C.FLUX, C.IVAR, C.MASK]))
    assert set(emb) == {"image"}


@pytest.mark.parametrize(
    "options",
    [{"size": "003M"}, {"pooling": "max"}, {"layer": 9}, {"colour": 1}, {"channels": "VIS,Y"}, {"image_size": 50}],
)
def test_bad_options_are_one_line_errors(options, batch):
    with pytest.raises(ModelError):
        load(**options).embed(batch)
