"""Reading weights without running code from the file, and mapping official keys onto :class:`AstroClip`.

Formats
- ``*.safetensors`` (FMB's retrained checkpoints; ``config.json`` beside it fixes the architecture).
- ``*.ckpt`` / ``*.pt`` / ``*.pth``: torch pickles, read once. ``torch.load(weights_only=True)`` when
  the pickle names only allow-listed globals; when it names others (the official ``astroclip.ckpt``
  pickles upstream head objects in ``hyper_parameters``), a restricted unpickler: tensors, storages,
  dtypes and plain containers are rebuilt, every other class or function becomes an inert
  :class:`Placeholder`; only ``state_dict`` is kept.

Key mapping (official file -> this package)
- ``astroclip.ckpt`` (Lightning): ``state_dict`` keys are used as they are (``image_encoder.*``,
  ``spectrum_encoder.*``; the ViT keeps DINOv2's ``blocks.<chunk>.<global index>.`` layout).
- ``astrodino.ckpt``: ``teacher.backbone.<k>`` -> ``image_encoder.backbone.<k>``; ``dino_head``/``ibot_head``
  are dropped.
- ``specformer.ckpt`` (Lightning): ``state_dict.<k>`` -> ``spectrum_encoder.backbone.<k>``.
- Flat DINOv2 block keys ``blocks.<i>.`` are re-chunked to ``blocks.<i // per_chunk>.<i>.``.
"""

from __future__ import annotations

import pickle
import re
import types
from pathlib import Path
from typing import Any

import torch

from fmb.errors import ModelError

#: Globals the restricted unpickler rebuilds for real: tensor reconstruction and plain containers.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch.storage", "UntypedStorage"),
        ("torch.storage", "TypedStorage"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
    }
)
_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}


class Placeholder:
    """Stands in for any class or function the checkpoint names but we do not trust: does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        return Placeholder()

    def __setitem__(self, key: Any, value: Any) -> None:  # for SETITEM(S) on placeholders
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _placeholder_class(module: str, name: str) -> type:
    return type(f"Placeholder[{module}.{name}]", (Placeholder,), {"__module__": __name__})


class RestrictedUnpickler(pickle.Unpickler):
    """Allows :data:`ALLOWED_GLOBALS`, storages and dtypes; anything else becomes a placeholder."""

    replaced: set[str]

    def find_class(self, module: str, name: str) -> Any:
        if not hasattr(self, "replaced"):
            self.replaced = set()
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and (name in _DTYPES or name.endswith("Storage")):
            return getattr(torch, name)
        self.replaced.add(f"{module}.{name}")
        return _placeholder_class(module, name)


def _restricted_pickle_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


#: What ``torch.load(pickle_module=...)`` uses: both its entry points are restricted (legacy files use ``load``).
restricted_pickle = types.ModuleType("fmb_astroclip_restricted_pickle")
restricted_pickle.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_pickle_load  # type: ignore[attr-defined]


def restricted_load(path: str | Path) -> Any:
    """``torch.load`` through :class:`RestrictedUnpickler` (no code from the file runs)."""
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)


def _unsafe_globals(path: str | Path) -> list[str] | None:
    """The globals of a zip-format torch file that ``weights_only`` refuses, found by disassembling its
    pickle alone (no tensor is read: ``torch.serialization.get_unsafe_globals_in_checkpoint``); None for
    a file it cannot inspect (the legacy, non-zip format)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except (RuntimeError, ValueError, OSError, EOFError, pickle.UnpicklingError, KeyError):
        return None


def read_torch_file(path: str | Path) -> Any:
    """A torch pickle, read once: with ``weights_only`` when every global in its pickle is on torch's
    allow-list, else with the restricted unpickler (the official ``astroclip.ckpt``). Deciding from the
    pickle alone keeps the peak memory at about one copy of the tensors; a file that cannot be inspected
    (legacy format) tries ``weights_only`` first and drops what that attempt read before falling back."""
    unsafe = _unsafe_globals(path)
    if unsafe == []:
        return torch.load(path, map_location="cpu", weights_only=True)
    if unsafe:
        return restricted_load(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # fall back outside the handler: its traceback would keep the partial load alive
    return restricted_load(path)


def _tensors(d: Any, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(d, dict):
        raise ModelError(f"astroclip: {where} is not a mapping of tensors")
    out = {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise ModelError(f"astroclip: {where} holds no tensors")
    return out


def _rechunk(state: dict[str, torch.Tensor], prefix: str, depth: int, chunks: int) -> dict[str, torch.Tensor]:
    """``<prefix>blocks.<i>.`` -> ``<prefix>blocks.<chunk>.<i>.`` when the file has flat DINOv2 blocks."""
    per = depth // chunks if chunks > 0 else depth
    pat = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.(?!\d+\.)")
    out = {}
    for k, v in state.items():
        m = pat.match(k)
        if m and chunks > 1:
            i = int(m.group(1))
            k = f"{prefix}blocks.{i // per}.{i}.{k[m.end() :]}"
        out[k] = v
    return out


def map_official(obj: Any, depth: int, chunks: int) -> tuple[str, dict[str, torch.Tensor]]:
    """Recognise an official or FMB checkpoint object; return (kind, state dict in this package's names).

    kind is ``full`` (both encoders and heads), ``image_backbone`` or ``spectrum_backbone``.
    """
    if isinstance(obj, dict) and "teacher" in obj:  # astrodino.ckpt
        teacher = _tensors(obj["teacher"], "astrodino 'teacher'")
        state = {
            f"image_encoder.backbone.{k[len('backbone.') :]}": v
            for k, v in teacher.items()
            if k.startswith("backbone.")
        }
        return "image_backbone", _rechunk(state, "image_encoder.backbone.", depth, chunks)
    state = (
        _tensors(obj["state_dict"], "checkpoint 'state_dict'")
        if isinstance(obj, dict) and "state_dict" in obj
        else _tensors(obj, "checkpoint")
    )
    if any(k.startswith(("image_encoder.", "spectrum_encoder.")) for k in state):
        return "full", _rechunk(state, "image_encoder.backbone.", depth, chunks)
    if any(k.startswith("data_embed.") for k in state):  # specformer.ckpt
        return "spectrum_backbone", {f"spectrum_encoder.backbone.{k}": v for k, v in state.items()}
    raise ModelError(
        "astroclip: checkpoint is neither astroclip, astrodino nor specformer "
        f"(first keys: {', '.join(list(state)[:3])})"
    )


def read_checkpoint(path: str | Path, depth: int, chunks: int) -> tuple[str, dict[str, torch.Tensor]]:
    """Read ``path`` (safetensors or torch pickle) -> (kind, mapped state dict)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return map_official(load_file(str(path)), depth, chunks)
    try:
        obj = read_torch_file(path)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelError(f"astroclip: cannot read checkpoint {str(path)!r}: {exc}".splitlines()[0]) from exc
    return map_official(obj, depth, chunks)


def load_into(
    model: torch.nn.Module, kind: str, state: dict[str, torch.Tensor], assign: bool = False, source: str = "checkpoint"
) -> None:
    """Strict load (:func:`fmb.protocol.weights.load_state_dict_strict`): the whole model for ``full``,
    else the named backbone only. A missing, unexpected or wrong-shape tensor is a one-line
    :class:`ModelError` naming ``source`` and the keys (in this package's names, after the mapping above).

    ``assign`` adopts the file's tensors (for a model built on the meta device)."""
    from fmb.protocol.weights import load_state_dict_strict

    if kind == "full":
        target, prefix = model, ""
    elif kind == "image_backbone":
        target, prefix = model.image_encoder.backbone, "image_encoder.backbone."
    else:
        target, prefix = model.spectrum_encoder.backbone, "spectrum_encoder.backbone."
    sub = {
        k.removeprefix(prefix) if k.startswith(prefix) else k: v.float() if v.is_floating_point() else v
        for k, v in state.items()
    }
    try:
        load_state_dict_strict(
            target, sub, f"astroclip: {source}" + (f" ({prefix.rstrip('.')})" if prefix else ""), assign=assign
        )
    except ModelError as exc:
        if "wrong shape" in str(exc):
            raise ModelError(f"{exc} (another size? try --model astroclip:size=...)") from None
        raise
