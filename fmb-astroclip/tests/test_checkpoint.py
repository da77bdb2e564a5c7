"""Official checkpoint layout: strict loading, the restricted unpickler, and offline hub loading."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from fmb.errors import ModelError
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb_astroclip.checkpoint import read_torch_file
from fmb_astroclip.config import SIZES
from fmb_astroclip.network import AstroClip

# ---- The official AstroCLIP checkpoint layout, written down from reading upstream
# (PolymathicAI/AstroCLIP 9d85069: astroclip/models/astroclip.py, specformer.py, modules.py;
# dinov2 vision_transformer.py with block_chunks=4): key -> shape of ``state_dict`` in astroclip.ckpt,
# as a function of the sizes.


def vit_keys(D: int, depth: int, chunks: int, patch: int, n_patches: int) -> dict[str, tuple[int, ...]]:
    keys = {
        "cls_token": (1, 1, D),
        "pos_embed": (1, n_patches + 1, D),
        "mask_token": (1, D),
        "patch_embed.proj.weight": (D, 3, patch, patch),
        "patch_embed.proj.bias": (D,),
    }
    per = depth // chunks
    for i in range(depth):
        b = f"blocks.{i // per}.{i}."
        keys.update(
            {
                b + "norm1.weight": (D,),
                b + "norm1.bias": (D,),
                b + "attn.qkv.weight": (3 * D, D),
                b + "attn.qkv.bias": (3 * D,),
                b + "attn.proj.weight": (D, D),
                b + "attn.proj.bias": (D,),
                b + "ls1.gamma": (D,),
                b + "norm2.weight": (D,),
                b + "norm2.bias": (D,),
                b + "mlp.fc1.weight": (4 * D, D),
                b + "mlp.fc1.bias": (4 * D,),
                b + "mlp.fc2.weight": (D, 4 * D),
                b + "mlp.fc2.bias": (D,),
                b + "ls2.gamma": (D,),
            }
        )
    keys.update({"norm.weight": (D,), "norm.bias": (D,)})
    return keys


def specformer_keys(S: int, depth: int, max_len: int = 800, token: int = 22) -> dict[str, tuple[int, ...]]:
    keys = {"data_embed.weight": (S, token), "data_embed.bias": (S,), "position_embed.weight": (max_len, S)}
    for i in range(depth):
        b = f"blocks.{i}."
        keys.update(
            {
                b + "layernorm1.weight": (S,),
                b + "layernorm1.bias": (S,),
                b + "attention.attention.weight": (3 * S, S),
                b + "attention.attention.bias": (3 * S,),
                b + "attention.projection.weight": (S, S),
                b + "attention.projection.bias": (S,),
                b + "layernorm2.weight": (S,),
                b + "layernorm2.bias": (S,),
                b + "mlp.encoder.weight": (4 * S, S),
                b + "mlp.encoder.bias": (4 * S,),
                b + "mlp.decoder.weight": (S, 4 * S),
                b + "mlp.decoder.bias": (S,),
            }
        )
    keys.update(
        {"final_layernorm.weight": (S,), "final_layernorm.bias": (S,), "head.weight": (token, S), "head.bias": (token,)}
    )
    return keys


def head_keys(E: int, kdim: int) -> dict[str, tuple[int, ...]]:
    """CrossAttentionHead + MLP; nn.MultiheadAttention packs q/k/v only when kdim == E."""
    keys: dict[str, tuple[int, ...]] = {"cross_attention.query": (1, 1, E)}
    a = "cross_attention.multihead_attn."
    if kdim == E:
        keys[a + "in_proj_weight"] = (3 * E, E)
    else:
        keys.update({a + "q_proj_weight": (E, E), a + "k_proj_weight": (E, kdim), a + "v_proj_weight": (E, kdim)})
    keys.update(
        {
            a + "in_proj_bias": (3 * E,),
            a + "out_proj.weight": (E, E),
            a + "out_proj.bias": (E,),
            "cross_attention.layernorm.weight": (E,),
            "cross_attention.layernorm.bias": (E,),
            "mlp.encoder.weight": (4 * E, E),
            "mlp.encoder.bias": (4 * E,),
            "mlp.decoder.weight": (E, 4 * E),
            "mlp.decoder.bias": (E,),
        }
    )
    return keys


def astroclip_keys(D=1024, depth=24, chunks=4, patch=12, image=144, S=768, sdepth=6, E=1024):
    """The full ``state_dict`` of astroclip.ckpt (official sizes by default: 446 tensors)."""
    keys = {}
    keys.update(
        {f"image_encoder.backbone.{k}": v for k, v in vit_keys(D, depth, chunks, patch, (image // patch) ** 2).items()}
    )
    keys.update({f"image_encoder.{k}": v for k, v in head_keys(E, D).items()})
    keys.update({f"spectrum_encoder.backbone.{k}": v for k, v in specformer_keys(S, sdepth).items()})
    keys.update({f"spectrum_encoder.{k}": v for k, v in head_keys(E, S).items()})
    return keys


#: The small size's numbers (fmb_astroclip.config.SIZES["small"]).
SMALL = {"D": 64, "depth": 2, "chunks": 2, "S": 64, "sdepth": 2, "E": 128}


EXECUTED: list[str] = []


def _run_on_unpickle(tag: str) -> str:
    EXECUTED.append(tag)
    return tag


class UpstreamImageHead:
    """Stands for upstream's pickled head object (a class the loader must not import)."""

    def __init__(self) -> None:
        self.config = "astroclip/astrodino/config.yaml"
        self.embed_dim = 1024


class Sneaky:
    def __reduce__(self):
        return (_run_on_unpickle, ("code ran",))


def _official_like_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) for k, shape in astroclip_keys(**SMALL).items()}


def _lightning_file(path, state) -> None:
    torch.save(
        {
            "epoch": 3,
            "global_step": 100,
            "pytorch-lightning_version": "2.2.0",
            "state_dict": state,
            "loops": {},
            "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(1.0)}},
            "optimizer_states": [],
            "lr_schedulers": [],
            "hparams_name": "kwargs",
            "hyper_parameters": {
                "image_encoder": UpstreamImageHead(),
                "spectrum_encoder": Sneaky(),
                "temperature": 15.5,
            },
        },
        path,
    )


def test_official_size_has_the_official_layout():
    with torch.device("meta"):
        net = AstroClip(SIZES["official"])
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert mine == astroclip_keys()
    assert len(mine) == 446
    assert abs(sum(np.prod(s) for s in mine.values()) / 1e6 - 370.8) < 0.1


def test_lightning_checkpoint_loads_strictly_without_running_its_code(tmp_path):
    state = _official_like_state()
    f = tmp_path / "astroclip.ckpt"
    _lightning_file(f, state)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(f, weights_only=True)
    EXECUTED.clear()
    obj = read_torch_file(f)
    assert not EXECUTED
    assert type(obj["hyper_parameters"]["image_encoder"]).__name__.startswith("Placeholder")
    spec = registry().model("astroclip")
    model = registry().load_model(spec.name, weights=str(f), options={"size": "small"})
    assert not EXECUTED
    assert model.weights.kind == "path" and len(model.weights.sha256) == 64 and model.weights.seed is None
    loaded = model.net.state_dict()
    assert set(loaded) == set(state)
    for k, v in state.items():
        torch.testing.assert_close(loaded[k], v)


def test_backbone_checkpoints_load_into_their_backbone(tmp_path):
    g = torch.Generator().manual_seed(1)
    vit = {f"backbone.{k}": torch.randn(s, generator=g) for k, s in vit_keys(64, 2, 2, 12, 144).items()}
    dino = {f"dino_head.mlp.{i}.weight": torch.randn(4, 4) for i in range(2)}
    torch.save({"teacher": {**vit, **dino}}, tmp_path / "astrodino.ckpt")
    spec_sd = {k: torch.randn(s, generator=g) for k, s in specformer_keys(64, 2).items()}
    torch.save(
        {"state_dict": spec_sd, "hyper_parameters": {"input_dim": 22, "embed_dim": 64}}, tmp_path / "specformer.ckpt"
    )
    spec = registry().model("astroclip")
    m = registry().load_model(spec.name, weights=str(tmp_path / "astrodino.ckpt"), options={"size": "small"})
    torch.testing.assert_close(
        m.net.image_encoder.backbone.state_dict()["blocks.1.1.attn.qkv.weight"],
        vit["backbone.blocks.1.1.attn.qkv.weight"],
    )
    assert m.settings()["weights_loaded"] == "image_backbone"
    m = registry().load_model(spec.name, weights=str(tmp_path / "specformer.ckpt"), options={"size": "small"})
    torch.testing.assert_close(m.net.spectrum_encoder.backbone.head.weight, spec_sd["head.weight"])


def test_wrong_size_checkpoint_is_a_one_line_error(tmp_path):
    f = tmp_path / "astroclip.ckpt"
    _lightning_file(f, _official_like_state())
    spec = registry().model("astroclip")
    state = _official_like_state()
    state.pop("image_encoder.backbone.norm.bias")
    _lightning_file(tmp_path / "broken.ckpt", state)
    with pytest.raises(ModelError, match="missing"):
        registry().load_model(spec.name, weights=str(tmp_path / "broken.ckpt"), options={"size": "small"})


SHA = "0123456789abcdef0123456789abcdef01234567"


def _seed_hub_cache(root, tmp_path):
    src = tmp_path / "src.ckpt"
    _lightning_file(src, _official_like_state(seed=2))
    repo = root / "models--polymathic-ai--astroclip"
    (repo / "snapshots" / SHA).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    shutil.copy(src, repo / "snapshots" / SHA / "astroclip.ckpt")
    return repo / "snapshots" / SHA / "astroclip.ckpt"


def test_offline_hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    file = _seed_hub_cache(cache, tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registry().model("astroclip")
    m = registry().load_model(spec.name, weights="hf:polymathic-ai/astroclip", options={"size": "small"})
    assert (m.weights.kind, m.weights.location, m.weights.revision) == ("hf", "polymathic-ai/astroclip", SHA)
    from fmb.io import sha256_file

    assert m.weights.sha256 == sha256_file(file)
    auto = registry().load_model(
        spec.name, weights="auto", options={"size": "small", "repo": "polymathic-ai/astroclip"}
    )
    assert auto.weights == m.weights
    batch = next(ToyDataset(size=4).iter_batches(4))
    np.testing.assert_array_equal(auto.embed(batch)["image"], m.embed(batch)["image"])
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE=1 and it is not in the local"):
        registry().load_model(
            spec.name, weights="hf:polymathic-ai/astroclip@main", options={"size": "small", "file": "x.ckpt"}
        )


def test_auto_falls_back_to_random_loudly(tmp_path, monkeypatch):
    from fmb.protocol.weights import RandomWeightsWarning

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registry().model("astroclip")
    with pytest.warns(RandomWeightsWarning, match="RANDOM initialisation"):
        m = registry().load_model(
            spec.name, weights="auto", options={"size": "small", "repo": "polymathic-ai/astroclip"}, seed=3
        )
    assert m.weights.kind == "random" and m.weights.seed == 3


def test_legacy_torch_format_is_restricted_too(tmp_path):
    f = tmp_path / "legacy.ckpt"
    torch.save(
        {"state_dict": {"a": torch.ones(2)}, "hyper_parameters": Sneaky()}, f, _use_new_zipfile_serialization=False
    )
    EXECUTED.clear()
    obj = read_torch_file(f)
    assert not EXECUTED
    torch.testing.assert_close(obj["state_dict"]["a"], torch.ones(2))


def test_checkpoint_is_read_once(tmp_path, monkeypatch):
    """The loader is chosen from the pickle alone: one torch.load per file (restricted for a Lightning file
    with upstream objects, weights_only for a plain state dict), so peak memory stays ~1x the tensors."""
    calls = []
    real = torch.load

    def counting(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    lightning = tmp_path / "astroclip.ckpt"
    _lightning_file(lightning, {"a": torch.ones(3)})
    assert read_torch_file(lightning)["state_dict"]["a"].sum() == 3 and calls == [False]
    calls.clear()
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"a": torch.ones(2)}}, plain)
    assert read_torch_file(plain)["state_dict"]["a"].sum() == 2 and calls == [True]
