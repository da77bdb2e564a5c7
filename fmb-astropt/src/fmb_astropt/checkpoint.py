"""Build AstroPT networks and read/write checkpoints in the official format, safely.

Official ``ckpt.pt`` files are torch pickles holding ``model`` (state dict, sometimes with
``_orig_mod.`` prefixes from torch.compile), ``model_args`` (GPTConfig keyword arguments,
including a list of ``ModalityConfig``), ``modality_registry`` (a pickled ``ModalityRegistry``)
and training bookkeeping. They are read with ``torch.load(weights_only=True)`` and an
allow-list of exactly those astropt classes (plus numpy scalars): any other pickled class is
refused, never executed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmb.errors import ModelError
from fmb_astropt.config import BLOCK_SIZE, IMAGES, PATCH, SPECTRA, SPECTRUM_PATCH

COMPILE_PREFIX = "_orig_mod."


def _astropt() -> Any:
    from astropt import model as astropt_model

    return astropt_model


def safe_classes() -> list[Any]:
    """The classes a checkpoint may hold besides tensors and plain containers."""
    m = _astropt()
    extra: list[Any] = [m.ModalityRegistry, m.ModalityConfig, m.GPTConfig, np.dtype]
    core = np._core if hasattr(np, "_core") else np.core
    extra.append(core.multiarray.scalar)
    extra += [
        getattr(np.dtypes, n)
        for n in ("Float64DType", "Float32DType", "Int64DType", "BoolDType")
        if hasattr(np, "dtypes") and hasattr(np.dtypes, n)
    ]
    return extra


def modality_configs(multimodal: bool, n_chan: int = 3) -> list[Any]:
    """The modalities of the official models: images (16-px patches) and, multimodal, spectra."""
    m = _astropt()
    mods = [
        m.ModalityConfig(
            name=IMAGES,
            input_size=PATCH * PATCH * n_chan,
            pos_input_size=1,
            patch_size=PATCH,
            embed_pos=True,
            loss_weight=1.0,
        )
    ]
    if multimodal:
        mods.append(
            m.ModalityConfig(
                name=SPECTRA,
                input_size=SPECTRUM_PATCH,
                pos_input_size=SPECTRUM_PATCH,
                patch_size=SPECTRUM_PATCH,
                embed_pos=False,
                loss_weight=0.5,
            )
        )
    return mods


def model_args_for(n_layer: int, n_head: int, n_embd: int, modalities: list[Any], n_chan: int = 3) -> dict[str, Any]:
    """GPTConfig keyword arguments as the official training scripts record them."""
    return dict(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_chan=n_chan,
        block_size=BLOCK_SIZE,
        dropout=0.0,
        bias=False,
        modalities=modalities,
        attn_type="causal",
    )


def model_args_of(net: torch.nn.Module) -> dict[str, Any]:
    """The ``model_args`` that rebuild ``net``."""
    c = net.config
    mods = list(net.modality_registry.modalities.values())
    img = net.modality_registry.get_config(IMAGES)
    n_chan = img.input_size // (img.patch_size * img.patch_size)  # the checkpoint's own patch size
    args = model_args_for(c.n_layer, c.n_head, c.n_embd, mods, n_chan=n_chan)
    args.update(block_size=c.block_size, bias=c.bias, attn_type=c.attn_type, tokeniser=c.tokeniser)
    return args


def build(model_args: dict[str, Any], modalities: list[Any], init: bool = True) -> torch.nn.Module:
    """An AstroPT ``GPT``: randomly initialised from torch's global generator, or (``init=False``)
    with uninitialised storage, to be filled by ``load_state_dict`` (skips the costly init)."""
    m = _astropt()
    fields = {f.name for f in dataclasses.fields(m.GPTConfig)}
    config = m.GPTConfig(**{k: v for k, v in model_args.items() if k in fields})
    if init:
        return m.GPT(config, m.ModalityRegistry(modalities), master_process=False)
    with torch.device("meta"):
        net = m.GPT(config, m.ModalityRegistry(modalities), master_process=False)
    return net.to_empty(device="cpu")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and the astropt allow-list."""
    try:
        with torch.serialization.safe_globals(safe_classes()):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = " ".join(str(exc).split())
        if "weights_only" in msg or "Unsupported global" in msg or "WeightsUnpickler" in msg:
            raise ModelError(
                f"astropt: refusing checkpoint {path}: it pickles objects outside the allowed "
                f"astropt classes ({msg[:300]})"
            ) from None
        raise ModelError(f"astropt: cannot read checkpoint {path}: {type(exc).__name__}: {msg[:300]}") from None
    if not isinstance(obj, dict) or "model" not in obj or "model_args" not in obj:
        raise ModelError(f"astropt: {path} is not an AstroPT checkpoint (needs 'model' and 'model_args')")
    if "modality_registry" not in obj:
        raise ModelError(
            f"astropt: {path} has no 'modality_registry' (an astropt v1 checkpoint?); only the v2 format is supported"
        )
    return obj


def strip_compile_prefix(state: dict[str, Any], source: str) -> dict[str, Any]:
    """``_orig_mod.<k>`` -> ``<k>``: the one rename a checkpoint may need. torch.compile wraps the module
    in ``OptimizedModule``, whose ``state_dict`` prefixes every key with ``_orig_mod.``; astropt's
    train.py saves that state dict as it is. A key present under both names is refused."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        name = k[len(COMPILE_PREFIX) :] if k.startswith(COMPILE_PREFIX) else k
        if name in out:
            raise ModelError(
                f"{source}: tensor {name} is in the checkpoint twice (with and without the "
                f"torch.compile prefix {COMPILE_PREFIX!r})"
            )
        out[name] = v
    return out


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> torch.nn.Module:
    """The network described and filled by a checkpoint read with :func:`read_checkpoint`.

    Strict: ``model`` must hold exactly the tensors of the network that ``model_args`` describes, with
    their shapes (after :func:`strip_compile_prefix`); otherwise a one-line :class:`ModelError` from
    :func:`fmb.protocol.weights.load_state_dict_strict` names ``source`` and the keys.
    """
    from fmb.protocol.weights import load_state_dict_strict

    registry = ckpt["modality_registry"]
    modalities = list(getattr(registry, "modalities", {}).values())
    if not modalities:
        raise ModelError(f"astropt: {source}: the checkpoint's modality registry is empty")
    if not isinstance(ckpt["model"], dict):
        raise ModelError(f"astropt: {source}: 'model' is not a state dict")
    try:
        net = build(dict(ckpt["model_args"]), modalities, init=False)
    except Exception as exc:
        raise ModelError(
            f"astropt: {source}: its model_args do not describe a network ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]})"
        ) from None
    state = strip_compile_prefix(ckpt["model"], f"astropt: {source}")
    load_state_dict_strict(net, state, f"astropt: {source}")
    return net


def save_checkpoint(
    path: str | Path,
    net: torch.nn.Module,
    model_args: dict[str, Any],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    iter_num: int = 0,
    best_val_loss: float = float("nan"),
    config: dict[str, Any] | None = None,
) -> Path:
    """Write ``net`` in the official ``ckpt.pt`` layout (loadable by astropt's ``load_astropt`` too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "model_args": model_args,
        "iter_num": int(iter_num),
        "best_val_loss": float(best_val_loss),
        "config": dict(config or {}),
        "modality_registry": net.modality_registry,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path
