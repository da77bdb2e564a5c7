"""Weights load strictly: a checkpoint with a renamed, dropped, extra or wrong-shape tensor is refused with one
line naming the key (also under torch.compile's ``_orig_mod.`` prefix); a refused file leaves no results."""

import numpy as np
import pytest
import torch
from astropt_helpers import load, toy_batch

from fmb.errors import ModelError
from fmb.io import sha256_file
from fmb.testing.weights import assert_one_line_naming, assert_run_refuses_weights, weight_faults
from fmb_astropt.checkpoint import COMPILE_PREFIX, model_args_of

FAULTS = ["renamed", "dropped", "extra", "wrong_shape"]


@pytest.fixture(scope="module")
def model():
    return load()


def _write(path, net, state):
    """A checkpoint in astropt's train.py layout holding ``state`` as its weights."""
    torch.save(
        {
            "model": state,
            "optimizer": {},
            "model_args": model_args_of(net),
            "iter_num": 1,
            "best_val_loss": 1.0,
            "config": {},
            "modality_registry": net.modality_registry,
        },
        path,
    )
    return path


@pytest.mark.parametrize("prefix", ["", COMPILE_PREFIX])
@pytest.mark.parametrize("fault", FAULTS)
def test_checkpoint_faults_are_refused(model, tmp_path, fault, prefix):
    state, key = weight_faults(model.net.state_dict())[fault]
    f = _write(tmp_path / "ckpt.pt", model.net, {prefix + k: v for k, v in state.items()})
    with pytest.raises(ModelError) as exc:
        load(weights=str(f))
    assert_one_line_naming(exc, "astropt", key, str(f))


def test_a_key_with_and_without_the_compile_prefix_is_refused(model, tmp_path):
    state = model.net.state_dict()
    key = next(iter(state))
    f = _write(tmp_path / "ckpt.pt", model.net, {**state, COMPILE_PREFIX + key: state[key]})
    with pytest.raises(ModelError) as exc:
        load(weights=str(f))
    assert_one_line_naming(exc, "astropt", key, "twice")


def test_a_correct_compiled_checkpoint_gives_the_embeddings_of_the_saved_model(model, tmp_path):
    f = _write(tmp_path / "ckpt.pt", model.net, {COMPILE_PREFIX + k: v for k, v in model.net.state_dict().items()})
    again = load(weights=str(f))
    assert again.weights.kind == "path" and again.weights.sha256 == sha256_file(f)
    batch = toy_batch(4)
    a, b = model.embed(batch), again.embed(batch)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(b[k], a[k])


def test_run_with_a_bad_file_exits_2_and_writes_no_results(model, tmp_path, toy):
    state, key = weight_faults(model.net.state_dict())["wrong_shape"]
    f = _write(tmp_path / "ckpt.pt", model.net, state)
    assert_run_refuses_weights("astropt:size=001M,image_size=64", f, tmp_path / "res", key, "wrong shape")


def _state(net):
    return {k: t.detach().clone() for k, t in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep_at_most", [512 * 2**20, 0])
def test_random_network_is_seeded_and_never_shares_the_kept_copy(monkeypatch, keep_at_most):
    """Random weights depend on the seed only (kept or rebuilt), and training a returned network leaves the next
    load unchanged; a network above KEEP_AT_MOST_BYTES is not kept (its copy would double the peak memory)."""
    from fmb_astropt import weights as W

    monkeypatch.setattr(W, "KEEP_AT_MOST_BYTES", keep_at_most)
    monkeypatch.setattr(W, "_kept", {})
    first = W.random_network("001M", seed=3)
    reference = _state(first)
    assert bool(W._kept) == (keep_at_most > 0)
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)  # "training" the first network
    again = W.random_network("001M", seed=3)
    assert _same(_state(again), reference)
    assert not _same(_state(W.random_network("001M", seed=4)), reference)
    assert len(W._kept) <= 1
