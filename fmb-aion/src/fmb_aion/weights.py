"""Stage 1 for AION: turn ``--weights auto|random|PATH|hf:REPO[@REV]`` into a model, two codecs
and a :class:`fmb.models.base.WeightsInfo`.

* ``hf:polymathic-ai/aion-base`` (gated: request access on the hub, then set ``HF_TOKEN`` or run
  ``hf auth login``): the snapshot's ``config.json``, ``model.safetensors`` and
  ``codecs/{image,spectrum}/`` are fetched with ``huggingface_hub.snapshot_download`` (the local
  cache only when ``HF_HUB_OFFLINE=1``) and loaded like a local folder.
* ``PATH``: a folder with that same layout (e.g. a ``snapshot_download`` of the repository).
  ``AION(config.json)`` and each codec (``codecs/<name>/config.json`` as keyword arguments) are
  built, then filled strictly from their ``model.safetensors`` (:func:`load_folder`). The provenance
  (``path`` + SHA-256, or ``hf`` + commit) is recorded only after all three loaded.
* ``random``: ``size=base`` or ``size=tiny`` (see :mod:`fmb_aion.sizes`), seeded.
* ``auto``: the official weights from the cache, else from the hub, else random init with a loud
  warning (``size=tiny`` goes straight to random: no tiny weights are published). Weights that are
  found but fail the strict load are refused, never replaced by random ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmb.errors import ModelError, UsageError
from fmb.io import atomic_path
from fmb.models.base import WeightsInfo
from fmb.protocol.weights import RandomWeightsWarning as _RandomWeightsWarning
from fmb.protocol.weights import WeightsRequest, parse_weights, resolve_source
from fmb_aion.sizes import aion_config, image_codec_config, spectrum_codec_config

HF_REPO = "polymathic-ai/aion-base"
CODEC_FOLDERS = {"image": "codecs/image", "spectrum": "codecs/spectrum"}
SNAPSHOT_FILES = ["config.json", "model.safetensors", "codecs/image/*", "codecs/spectrum/*"]
#: The files a snapshot folder must hold; each is read (and hashed).
LOADED_FILES = (
    "config.json",
    "model.safetensors",
    *(f"{d}/{f}" for d in CODEC_FOLDERS.values() for f in ("config.json", "model.safetensors")),
)


#: core's random-weights warning (kept under this name for filters written against fmb-aion)
RandomWeightsWarning = _RandomWeightsWarning


@dataclass
class Components:
    """A loaded AION encoder, its image and spectrum codecs, and where the weights came from."""

    model: Any
    image_codec: Any
    spectrum_codec: Any
    info: WeightsInfo
    size: str  # base | tiny for random init; "weights" when the architecture came from config.json


def download(repo: str, revision: str = "") -> Path:
    """The snapshot folder of ``repo`` holding the files AION needs (:func:`fmb.hub.snapshot`; one-line
    :class:`fmb.hub.HubError`; a cached snapshot lacking one of :data:`LOADED_FILES` counts as a miss)."""
    from fmb import hub

    return hub.snapshot(repo, revision, SNAPSHOT_FILES, require=LOADED_FILES).path


def _codec_kwargs(folder: Path, name: str, codec_cls: Any = None) -> dict[str, Any]:
    """The codec's ``config.json``, keeping only keys its ``__init__`` takes (as the hub mixin's own
    ``from_pretrained`` does), so extra keys written by newer tools do not break loading."""
    import inspect

    cfg_file = folder / CODEC_FOLDERS[name] / "config.json"
    if not cfg_file.is_file():
        raise ModelError(
            f"aion: {folder} has no {CODEC_FOLDERS[name]}/config.json (expected the aion-base layout: "
            "config.json, model.safetensors, codecs/image/, codecs/spectrum/)"
        )
    cfg = _read_config(cfg_file)
    if codec_cls is None:
        return cfg
    params = inspect.signature(codec_cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cfg
    return {k: v for k, v in cfg.items() if k in params and k != "self"}


def _read_safetensors(file: Path) -> dict[str, Any]:
    """The tensors of one safetensors file (no code runs: safetensors holds only tensors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"aion: cannot read {file}: {' '.join(str(exc).split())[:200]}") from None


def _read_config(file: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"aion: cannot read {file}: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"aion: {file} is not a JSON object")
    return cfg


def _fill(module: Any, file: Path) -> None:
    """Strictly load ``file`` (safetensors) into ``module``."""
    from fmb.protocol.weights import load_state_dict_strict

    load_state_dict_strict(module, _read_safetensors(file), f"aion: {file}")


def _build(what: str, file: Path, build: Any) -> Any:
    try:
        return build()
    except Exception as exc:  # a config.json that does not describe a valid architecture
        raise ModelError(
            f"aion: {file} does not describe a valid {what} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from None


def load_folder(folder: Path) -> tuple[Any, Any, Any]:
    """``AION`` plus image and spectrum codecs from a snapshot folder (see the module docstring).

    Each part is built from its ``config.json`` and filled from its ``model.safetensors`` with
    :func:`fmb.protocol.weights.load_state_dict_strict`: a missing, unexpected or wrong-shape tensor is
    a one-line :class:`ModelError` naming the file and the keys. (``from_pretrained`` of the hub mixin
    is not used: it loads with ``strict=False``, so renamed keys would silently stay random.)
    """
    from aion import AION
    from aion.codecs import ImageCodec, SpectrumCodec
    from aion.modalities import DESISpectrum, HSCImage

    for rel in ("config.json", "model.safetensors"):
        if not (folder / rel).is_file():
            raise ModelError(
                f"aion: {folder} has no {rel} (expected the aion-base layout: config.json, "
                "model.safetensors, codecs/image/, codecs/spectrum/)"
            )
    cfg_file = folder / "config.json"
    config = _read_config(cfg_file)
    model = _build("AION model", cfg_file, lambda: AION(config))
    _fill(model, folder / "model.safetensors")
    codecs = []
    for name, cls, modality in (("image", ImageCodec, HSCImage), ("spectrum", SpectrumCodec, DESISpectrum)):
        sub = folder / CODEC_FOLDERS[name]
        kwargs = _codec_kwargs(folder, name, cls)
        if not (sub / "model.safetensors").is_file():
            raise ModelError(f"aion: {folder} has no {CODEC_FOLDERS[name]}/model.safetensors")
        codec = _build(f"{name} codec", sub / "config.json", lambda cls=cls, kwargs=kwargs: cls(**kwargs))
        _fill(codec, sub / "model.safetensors")
        codec._modality = modality  # what the hub mixin's from_pretrained records (save_pretrained reads it)
        codecs.append(codec)
    return model.eval(), codecs[0].eval(), codecs[1].eval()


def save_folder(folder: str | Path, model: Any, image_codec: Any, spectrum_codec: Any) -> Path:
    """Write the aion-base layout (config.json, model.safetensors, codecs/{image,spectrum}/) to ``folder``."""
    from aion.modalities import DESISpectrum, HSCImage

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    image_codec.save_pretrained(str(folder), modality=HSCImage)
    spectrum_codec.save_pretrained(str(folder), modality=DESISpectrum)
    for rel in LOADED_FILES:
        if rel.endswith(".safetensors"):
            canonical_safetensors(folder / rel)
    return folder


def canonical_safetensors(path: Path) -> None:
    """Rewrite the JSON header of the safetensors file ``path`` with its keys sorted, so the same tensors give
    the same bytes (and :func:`folder_sha256` the same hash). safetensors writes its ``__metadata__`` (the hub
    mixin records the tied tensors there) from a Rust ``HashMap``, whose order changes from one save to the
    next. The format (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian header
    length N, N bytes of JSON (padded with spaces), then the tensor data, addressed by offsets relative to its
    start; only the header is rewritten, the data bytes are kept."""
    import struct

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    if isinstance(header.get("__metadata__"), dict):
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as safetensors writes it
    with atomic_path(path) as tmp:  # a crash mid-write leaves the original file, never a torn one
        tmp.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def build_random(size: str, seed: int) -> tuple[Any, Any, Any]:
    """A seeded random AION and codecs of ``size``."""
    import torch
    from aion import AION
    from aion.codecs import ImageCodec, SpectrumCodec

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AION(aion_config(size))
        image_codec = ImageCodec(**image_codec_config(size))
        spectrum_codec = SpectrumCodec(**spectrum_codec_config(size))
    return model.eval(), image_codec.eval(), spectrum_codec.eval()


def folder_sha256(folder: Path) -> str:
    """One SHA-256 over the files that are loaded (names and bytes)."""
    h = hashlib.sha256()
    for rel in LOADED_FILES:
        p = folder / rel
        if p.is_file():
            h.update(rel.encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _random(size: str, seed: int) -> Components:
    return Components(*build_random(size, seed), WeightsInfo(kind="random", seed=seed), size)


def resolve(weights: str | WeightsRequest, size: str = "base", seed: int = 0, size_given: bool = False) -> Components:
    """Load what ``--weights`` asks for (core's policy, :func:`fmb.protocol.weights.resolve_source`)."""
    from fmb import hub

    req = weights if isinstance(weights, WeightsRequest) else parse_weights(weights)
    if req.kind == "none":
        raise UsageError("aion: --weights none is not possible (AION has learned weights); use random")
    if req.kind == "path" and not Path(req.location).is_dir():
        raise UsageError(
            f"aion: --weights {req.location!r} must be a snapshot folder (config.json, "
            "model.safetensors, codecs/image/, codecs/spectrum/)"
        )
    src = resolve_source(
        req,
        model="aion",
        seed=seed,
        official=HF_REPO,
        no_official=f"no published weights for size={size}" if size_given and size != "base" else "",
        fetch=lambda repo, rev: hub.snapshot(repo, rev, SNAPSHOT_FILES, require=LOADED_FILES),
        hint=f"Use --weights hf:{HF_REPO} (gated; needs HF_TOKEN) or a local snapshot folder",
    )
    if src.kind == "random":
        return _random(size, seed)
    model, ic, sc = load_folder(src.path)  # strict; the provenance is recorded only after it loaded
    info = WeightsInfo(
        kind=src.kind,
        location=str(src.path) if src.kind == "path" else src.location,
        revision=src.revision,
        sha256=folder_sha256(src.path),
    )
    return Components(model, ic, sc, info, "weights")
