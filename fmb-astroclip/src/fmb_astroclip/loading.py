"""``--weights auto|random|PATH|hf:REPO[@REV]`` -> a built :class:`AstroClip` and its :class:`WeightsInfo`.

``auto``: the ``path=`` model option if given; else (official size) the hub file, from the local
Hugging Face cache or downloaded when the hub is reachable; else random initialisation with a
loud warning. The small size has no published weights, so ``auto`` means random for it unless a
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
from fmb.protocol.weights import parse_weights
from fmb.reporting import Reporter
from fmb_astroclip import hub
from fmb_astroclip.checkpoint import load_into, read_checkpoint
from fmb_astroclip.config import AstroClipConfig, config_for
from fmb_astroclip.network import AstroClip

RETRAIN_WEIGHTS = "model.safetensors"
RETRAIN_CONFIG = "config.json"


@dataclass
class Loaded:
    net: AstroClip
    weights: WeightsInfo
    parts: str  # full | image_backbone | spectrum_backbone | none


def save_checkpoint(net: AstroClip, folder: str | Path, extra: dict | None = None,
                    weights_file: str = RETRAIN_WEIGHTS) -> Path:
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
    """A loud warning on stderr (the protocol's own style)."""
    Reporter().warn(message)


def build(cfg: AstroClipConfig, seed: int) -> AstroClip:
    """A randomly initialised network; the global torch RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AstroClip(cfg).eval()


def _checkpoint_file(path: Path) -> Path:
    if path.is_dir():
        for name in (RETRAIN_WEIGHTS, hub.OFFICIAL_FILE):
            if (path / name).exists():
                return path / name
        raise ModelError(f"astroclip: folder {str(path)!r} holds neither {RETRAIN_WEIGHTS} nor {hub.OFFICIAL_FILE}")
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


def from_file(file: Path, size: str | None, seed: int, kind: str, location: str = "",
              revision: str = "") -> Loaded:
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
        warn(f"astroclip: {file.name} holds only the {parts.replace('_', ' ')}; everything else is RANDOM "
             f"(seed {seed})")
    info = WeightsInfo(kind=kind, location=location or str(file), revision=revision, sha256=sha256_file(file),
                       seed=None if parts == "full" else seed)
    return Loaded(net, info, parts)


def random_weights(size: str | None, seed: int) -> Loaded:
    return Loaded(build(config_for(size or "official"), seed), WeightsInfo(kind="random", seed=seed), "none")


def resolve(weights: str, size: str | None = None, seed: int = 0, path: str | None = None,
            repo: str | None = None, filename: str = hub.OFFICIAL_FILE) -> Loaded:
    """Build the network that ``--weights`` asks for (see the module docstring).

    ``repo`` (default the official one) is where ``auto`` looks; for a non-official size only an
    explicit ``repo`` is looked up.
    """
    req = parse_weights(weights)
    if req.kind == "none":
        raise ModelError("astroclip has learned weights: use --weights auto, random, a path or hf:REPO")
    if req.kind == "random":
        return random_weights(size, seed)
    if req.kind == "path":
        return from_file(Path(req.location), size, seed, "path")
    if req.kind == "hf":
        file = hub.download(req.location, filename, req.revision or None)
        return from_file(file, size, seed, "hf", req.location, hub.revision_of(file) or req.revision)
    if path:  # auto with an explicit local file
        return resolve(str(path), size, seed)
    if (size or "official") != "official" and not repo:
        warn(f"astroclip size {size!r} has no published weights: using RANDOM initialisation (seed {seed})")
        return random_weights(size, seed)
    try:
        repo = repo or hub.OFFICIAL_REPO
        file = hub.download(repo, filename)
    except ModelError as exc:
        warn(f"{exc}: astroclip runs with RANDOM weights (seed {seed}); its embeddings say nothing about "
             "the trained model")
        return random_weights(size, seed)
    return from_file(file, size, seed, "hf", repo, hub.revision_of(file))


