"""``--weights`` for astropt: core's weights policy (:func:`fmb.protocol.weights.resolve_source`) over
astropt networks.

``auto`` is the official ``Smith42/astroPT_v2.0`` checkpoint of the asked-for size (from the hub cache or
downloaded, :mod:`fmb.hub`); a size without an official checkpoint, or weights not to be had, fall back to
a seeded random network with core's random-weights warning. A PATH is a ``ckpt.pt`` (or a folder holding
one, e.g. an ``fmb retrain astropt`` run folder). Every checkpoint loads strictly (:mod:`fmb_astropt.checkpoint`);
the provenance is recorded only after that succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmb.errors import ModelError
from fmb.models.base import WeightsInfo
from fmb_astropt.config import DEFAULT_SIZE, OFFICIAL_REPO, OFFICIAL_SIZES, SIZES, Options, hub_file

CHECKPOINT_NAMES = ("ckpt.pt", "ckpt_best.pt", "ckpt_final.pt")


#: a random network of at most this many parameter bytes is kept (one copy) so that loading it again skips
#: the slow initialisation; a bigger one is rebuilt each time, since the kept copy would double the peak
#: memory of every load (astropt 2100M: 8.4 GB of float32 weights).
KEEP_AT_MOST_BYTES = 512 * 2**20

#: the last kept random network: ``(size, seed, multimodal) -> {"model": state dict, "model_args": ...}``
_kept: dict[tuple[str, int, bool], dict[str, Any]] = {}


def modality_configs_for(multimodal: bool) -> list[Any]:
    from fmb_astropt.checkpoint import modality_configs

    return modality_configs(multimodal)


def random_args(size: str, multimodal: bool) -> dict[str, Any]:
    from fmb_astropt.checkpoint import model_args_for

    return model_args_for(*SIZES[size], modalities=modality_configs_for(multimodal))


def random_network(size: str, seed: int, multimodal: bool = True) -> Any:
    """A seeded, freshly initialised network of the scaling family (the global RNG is left untouched).
    The last one built is kept, as a copy of its weights, when it has at most :data:`KEEP_AT_MOST_BYTES`
    (loading it again then skips the slow initialisation); the network returned never shares storage with
    the kept copy, so training it leaves the next load unchanged."""
    import torch

    from fmb_astropt.checkpoint import build, model_args_of

    key = (size, int(seed), bool(multimodal))
    kept = _kept.get(key)
    if kept is not None:
        net = build(kept["model_args"], modality_configs_for(multimodal), init=False)
        net.load_state_dict(kept["model"])
        return net
    _kept.clear()  # before building: never two networks' weights beside the one being built
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(random_args(size, multimodal), modality_configs_for(multimodal))
    state = net.state_dict()
    if sum(t.numel() * t.element_size() for t in state.values()) <= KEEP_AT_MOST_BYTES:
        _kept[key] = {"model": {k: t.detach().clone() for k, t in state.items()}, "model_args": model_args_of(net)}
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
