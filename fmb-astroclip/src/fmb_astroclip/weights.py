"""``--weights auto|random|PATH|hf:REPO[@REV]`` -> a built :class:`AstroClip` and its :class:`WeightsInfo`.

Core's weights policy (:func:`fmb.protocol.weights.resolve_source`, hub access through :mod:`fmb.hub`).
``auto``: the ``path=`` model option if given; else (official size) the hub file, from the local
Hugging Face cache or downloaded when the hub is reachable; else random initialisation with core's
random-weights warning. The small size has no published weights, so ``auto`` means random for it unless a
``repo=`` option names one.
A PATH is a file (``astroclip.ckpt``, ``astrodino.ckpt``, ``specformer.ckpt``, ``*.safetensors``)
or a folder holding ``model.safetensors`` (an FMB retrain) or ``astroclip.ckpt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from fmb.errors import ModelError
from fmb.io import sha256_file
from fmb.models.base import WeightsInfo
from fmb_astroclip.checkpoint import load_into, read_checkpoint
from fmb_astroclip.config import AstroClipConfig, config_for
from fmb_astroclip.network import AstroClip

RETRAIN_WEIGHTS = "model.safetensors"
RETRAIN_CONFIG = "config.json"
OFFICIAL_REPO = "polymathic-ai/astroclip"
OFFICIAL_FILE = "astroclip.ckpt"


@dataclass
class Loaded:
    net: AstroClip
    weights: WeightsInfo
    parts: str  # full | image_backbone | spectrum_backbone | none


def save_checkpoint(
    net: AstroClip, folder: str | Path, extra: dict | None = None, weights_file: str = RETRAIN_WEIGHTS
) -> Path:
    """``folder/model.safetensors`` + ``folder/config.json`` (the architecture): loadable as ``--weights folder``."""
    from safetensors.torch import save_file

    from fmb.io import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (weights_file + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(folder / weights_file)
    if not (folder / RETRAIN_CONFIG).exists() or extra is not None:
        write_json({"model": net.cfg.to_dict(), **(extra or {})}, folder / RETRAIN_CONFIG)
    return folder


def warn(message: str) -> None:
    """Core's random-weights warning class, for weights that leave part of the network random."""
    import warnings

    from fmb.protocol.weights import RandomWeightsWarning

    warnings.warn(message, RandomWeightsWarning, stacklevel=3)


def build(cfg: AstroClipConfig, seed: int) -> AstroClip:
    """A randomly initialised network; the global torch RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AstroClip(cfg).eval()


def _checkpoint_file(path: Path) -> Path:
    if path.is_dir():
        for name in (RETRAIN_WEIGHTS, OFFICIAL_FILE):
            if (path / name).exists():
                return path / name
        raise ModelError(f"astroclip: folder {str(path)!r} holds neither {RETRAIN_WEIGHTS} nor {OFFICIAL_FILE}")
    return path


def _config(file: Path, size: str | None) -> AstroClipConfig:
    """The architecture: from ``config.json`` beside a retrained checkpoint, else the named size."""
    side = file.parent / RETRAIN_CONFIG
    if file.suffix == ".safetensors" and side.exists():
        cfg = AstroClipConfig.from_dict(json.loads(side.read_text())["model"])
        if size and size != cfg.size:
            raise ModelError(f"astroclip: checkpoint {str(file)!r} is size {cfg.size!r}, not {size!r}")
        return cfg
    return config_for(size or "official")


def from_file(file: Path, size: str | None, seed: int, kind: str, location: str = "", revision: str = "") -> Loaded:
    file = _checkpoint_file(file)
    cfg = _config(file, size)
    parts, state = read_checkpoint(file, cfg.vit_depth, cfg.vit_block_chunks)
    if parts == "full":  # every tensor comes from the file: skip the random initialisation
        with torch.device("meta"):
            net = AstroClip(cfg).eval()
    else:
        net = build(cfg, seed)
    load_into(net, parts, state, assign=parts == "full", source=str(file))
    # provenance only after the strict load succeeded
    if parts != "full":
        warn(
            f"astroclip: {file.name} holds only the {parts.replace('_', ' ')}; everything else is RANDOM (seed {seed})"
        )
    info = WeightsInfo(
        kind=kind,
        location=location or str(file),
        revision=revision,
        sha256=sha256_file(file),
        seed=None if parts == "full" else seed,
    )
    return Loaded(net, info, parts)


def random_weights(size: str | None, seed: int) -> Loaded:
    return Loaded(build(config_for(size or "official"), seed), WeightsInfo(kind="random", seed=seed), "none")


def resolve(
    weights: str,
    size: str | None = None,
    seed: int = 0,
    path: str | None = None,
    repo: str | None = None,
    filename: str = OFFICIAL_FILE,
) -> Loaded:
    """Build the network that ``--weights`` asks for (see the module docstring).

    ``repo`` (default the official one) is where ``auto`` looks; for a non-official size only an
    explicit ``repo`` is looked up.
    """
    from fmb import hub
    from fmb.protocol.weights import parse_weights, resolve_source

    if path and parse_weights(weights).kind == "auto":  # auto with an explicit local file
        weights = str(path)
    no_official = (
        "" if (size or "official") == "official" or repo else f"astroclip size {size!r} has no published weights"
    )
    src = resolve_source(
        weights,
        model="astroclip",
        seed=seed,
        official=repo or OFFICIAL_REPO,
        no_official=no_official,
        fetch=lambda r, rev: hub.download(r, filename, rev),
    )
    if src.kind == "random":
        return random_weights(size, seed)
    if src.kind == "path":
        return from_file(src.path, size, seed, "path")
    return from_file(src.path, size, seed, "hf", src.location, src.revision)
