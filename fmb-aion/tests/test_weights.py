"""Weights: random, auto fallback, the real hub loader against a seeded offline cache, local folders."""

import numpy as np
import pytest
import torch

from fmb.errors import ModelError, UsageError
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb_aion import weights as W

from .conftest import COMMIT


def _load(weights, **options):
    spec = registry().model("aion")
    return registry().load_model(spec.name, weights=weights, options=options, seed=3)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_random_is_seeded_and_recorded():
    a, b = W.resolve("random", "tiny", seed=1), W.resolve("random", "tiny", seed=1)
    assert a.info == W.WeightsInfo(kind="random", seed=1) and a.size == "tiny"
    assert _same_state(a.model, b.model) and _same_state(a.spectrum_codec, b.spectrum_codec)
    assert not _same_state(a.model, W.resolve("random", "tiny", seed=2).model)


def test_auto_with_nothing_falls_back_to_random_loudly(empty_offline_hub):
    with pytest.warns(W.RandomWeightsWarning, match="RANDOM"):
        m = _load("auto", size="tiny")
    assert m.weights.kind == "random" and m.weights.seed == 3
    with pytest.warns(W.RandomWeightsWarning, match="not in the local Hugging Face cache"):
        comps = W.resolve("auto", "tiny", seed=0)  # size not given: the hub is tried first
    assert comps.info.kind == "random"


def test_offline_hub_loads_the_seeded_cache(offline_hub, tiny_parts):
    m = _load("hf:polymathic-ai/aion-base")
    assert m.weights.kind == "hf" and m.weights.location == W.HF_REPO and m.weights.revision == COMMIT
    assert m.settings()["size"] == "weights" and m.settings()["dim"] == 64
    assert _same_state(m.aion, tiny_parts[0]) and _same_state(m.image_codec, tiny_parts[1])
    assert _same_state(m.spectrum_codec, tiny_parts[2])
    auto = W.resolve("auto")  # auto finds the cached official weights
    assert auto.info.kind == "hf" and auto.info.revision == COMMIT


def test_offline_hub_missing_repo_is_one_line(offline_hub):
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE=1 and it is not in the local"):
        _load("hf:someone/aion-other")


def test_gated_repo_says_a_token_is_needed(monkeypatch):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    url = "https://huggingface.co/api/models/polymathic-ai/aion-base"
    response = httpx.Response(403, request=httpx.Request("GET", url))

    def gated(*a, **k):
        raise GatedRepoError(
            "403 Client Error: access to model polymathic-ai/aion-base is restricted", response=response
        )

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("fmb.hub.reachable", lambda timeout=3.0: True)
    with pytest.raises(ModelError, match=r"gated.*HF_TOKEN"):
        W.download(W.HF_REPO)


def test_local_folder_and_save_weights(tmp_path, tiny_parts):
    folder = W.save_folder(tmp_path / "snap", *tiny_parts)
    m = _load(str(folder))
    assert m.weights.kind == "path" and len(m.weights.sha256) == 64
    batch = next(ToyDataset(size=3).iter_batches(3))
    again = _load(str(m.save_weights(tmp_path / "again")))
    assert again.weights.kind == "path" and len(again.weights.sha256) == 64
    assert _same_state(again.aion, m.aion) and _same_state(again.spectrum_codec, m.spectrum_codec)
    for k, v in m.embed(batch).items():
        np.testing.assert_allclose(again.embed(batch)[k], v, rtol=1e-5, atol=1e-6)


def test_bad_weights(tmp_path):
    with pytest.raises(UsageError, match="none"):
        W.resolve("none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        W.resolve(str(tmp_path / "empty"))
