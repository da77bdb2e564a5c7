"""``--weights`` for astropt: core's weights policy (:func:`fmb.protocol.weights.resolve_source`) over
astropt networks.

``auto`` is the official ``Smith42/astroPT_v2.0`` checkpoint of the asked-for size (from the hub cache or
downloaded, :mod:`fmb.hub`); a size without an official checkpoint, or weights not to be had, fall back to
a seeded random network with core's random-weights warning. A PATH is a ``ckpt.pt`` (or a folder holding
one, e.g. an ``fmb retrain astropt`` run folder). Every checkpoint loads strictly (:mod:`fmb_astropt.checkpoint`);
the provenance is recorded only after that succeeded.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fmb.errors import ModelError
from fmb.models.base import WeightsInfo
from fmb_astropt.config import DEFAULT_SIZE, OFFICIAL_REPO, OFFICIAL_SIZES, SIZES, Options, hub_file

CHECKPOINT_NAMES = ("ckpt.pt", "ckpt_best.pt", "ckpt_final.pt")


@lru_cache(maxsize=1)
def _random_state(size: str, seed: int, multimodal: bool) -> dict[str, Any]:
    import torch

    from fmb_astropt.checkpoint import build, model_args_of

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(random_args(size, multimodal), modality_configs_for(multimodal))
    return {"model": net.state_dict(), "model_args": model_args_of(net)}


def modality_configs_for(multimodal: bool) -> list[Any]:
    from fmb_astropt.checkpoint import modality_configs

    return modality_configs(multimodal)


def random_args(size: str, multimodal: bool) -> dict[str, Any]:
    from fmb_astropt.checkpoint import model_args_for

    return model_args_for(*SIZES[size], modalities=modality_configs_for(multimodal))


def random_network(size: str, seed: int, multimodal: bool = True) -> Any:
    """A seeded, freshly initialised network of the scaling family (the global RNG is left untouched;
    the last one built is kept so that loading it again skips the slow initialisation)."""
    from fmb_astropt.checkpoint import build

    cached = _random_state(size, seed, multimodal)
    net = build(cached["model_args"], modality_configs_for(multimodal), init=False)
    net.load_state_dict(cached["model"])
    return net


def network_from_file(path: Path) -> Any:
    from fmb_astropt.checkpoint import model_from_checkpoint, read_checkpoint

    return model_from_checkpoint(read_checkpoint(path), str(path))


def checkpoint_file(location: str | Path) -> Path:
    """``location`` itself, or the first of :data:`CHECKPOINT_NAMES` in that folder."""
    p = Path(location)
    if p.is_dir():
        for name in CHECKPOINT_NAMES:
            if (p / name).is_file():
                return p / name
        raise ModelError(f"astropt: folder {p} holds no ckpt.pt")
    return p


def resolve_network(weights: str, opts: Options, seed: int) -> tuple[Any, WeightsInfo]:
    """Turn ``--weights`` into a network and its provenance (see the module docstring)."""
    from fmb import hub
    from fmb.io import sha256_file
    from fmb.protocol.weights import resolve_source

    size = opts.size or DEFAULT_SIZE
    filename = opts.hf_file or hub_file(size)
    no_official = (
        ""
        if size in OFFICIAL_SIZES or opts.hf_file
        else f"there is no official {size} checkpoint (official: {', '.join(OFFICIAL_SIZES)})"
    )
    src = resolve_source(
        weights,
        model="astropt",
        seed=seed,
        official=OFFICIAL_REPO,
        no_official=no_official,
        fetch=lambda repo, rev: hub.download(repo, filename, rev),
    )
    if src.kind == "random":
        return random_network(size, seed), WeightsInfo(kind="random", seed=seed)
    f = checkpoint_file(src.path)
    net = network_from_file(f)  # strict: the provenance below is recorded only after it loaded
    if src.kind == "path":
        return net, WeightsInfo(kind="path", location=str(f), sha256=sha256_file(f))
    return net, WeightsInfo(
        kind="hf", location=f"{src.location}/{filename}", revision=src.revision, sha256=sha256_file(f)
    )
