"""How the embed stage runs a model's forward passes: inference mode, numeric precision, host memory.

One owner for the accelerator settings of stage 2 (:mod:`fmb.protocol.embed`):

- every forward pass runs under ``torch.inference_mode()`` (no autograd bookkeeping);
- ``precision``: ``fp32`` (default) or ``bf16``, which runs the forward passes under
  ``torch.autocast(device_type, dtype=torch.bfloat16)`` on the model's device (CPU too). bf16 changes
  the numbers, so the precision enters the embedding cache key and results.json. Measured on CPU with
  random weights (``fmb-core/tests/test_accel.py``): bf16 embeddings stay within cosine distance
  :data:`BF16_COSINE_TOLERANCE` of fp32 ones;
- pinned (page-locked) host memory and ``non_blocking`` copies when the device is CUDA
  (:func:`pin_memory_for`): the prefetching loader pins what a model's ``prepare`` made, so the copy
  to the GPU overlaps compute. A no-op elsewhere (pinning needs a CUDA driver).

torch is imported only when a model runs (fmb-core starts without it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from fmb.errors import UsageError

PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"
#: largest cosine distance (1 - cos) between a bf16-autocast embedding and its fp32 one accepted by the
#: tests (bf16 keeps 8 bits of mantissa: about 3 significant digits per operation)
BF16_COSINE_TOLERANCE = 0.02


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a one-line UsageError."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} (expected {' or '.join(PRECISIONS)})")
    return precision


def device_type(device: Any) -> str:
    """``"cuda"`` for ``cuda``/``cuda:1``/``torch.device("cuda", 0)``; ``"cpu"`` for None."""
    if device is None:
        return "cpu"
    return str(getattr(device, "type", None) or str(device).split(":", 1)[0])


def model_device(model: Any) -> str:
    """The device a model runs on: its ``device`` attribute (plugins set it), else ``cpu``."""
    return str(getattr(model, "device", None) or "cpu")


def pin_memory_for(device: Any) -> bool:
    """True when host tensors bound for ``device`` should be pinned and copied with ``non_blocking``:
    the device is CUDA and torch (already imported by the model) sees a CUDA driver."""
    if device_type(device) != "cuda":
        return False
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available())


def pin(obj: Any) -> Any:
    """``obj`` with every CPU torch tensor in it (nested in tuples, lists and dicts) in pinned memory.
    Anything else (numpy arrays, Arrow batches, numbers) is returned as it is; so is everything where
    there is no CUDA driver (pinning needs one)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return obj
    return _map_tensors(obj, lambda t: t.pin_memory() if t.device.type == "cpu" else t, torch)


def _map_tensors(obj: Any, fn: Any, torch: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(_map_tensors(v, fn, torch) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(v, fn, torch) for v in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn, torch) for k, v in obj.items()}
    return obj


def move(obj: Any, device: Any) -> Any:
    """``obj`` with every torch tensor in it (nested in tuples, lists and dicts) on ``device``
    (:func:`to_device`); anything else as it is. For benchmarks that time forward passes alone."""
    torch = sys.modules.get("torch")
    return obj if torch is None else _map_tensors(obj, lambda t: to_device(t, device), torch)


def to_device(x: Any, device: Any) -> Any:
    """``x.to(device)``, ``non_blocking`` when ``x`` is in pinned memory and the device is CUDA (the copy
    then overlaps compute on the current stream; later kernels on that stream see it complete)."""
    non_blocking = pin_memory_for(device) and bool(getattr(x, "is_pinned", lambda: False)())
    return x.to(device, non_blocking=non_blocking)


@contextlib.contextmanager
def forward_context(device: Any, precision: str = DEFAULT_PRECISION) -> Iterator[None]:
    """The context of every forward pass of the embed stage: ``torch.inference_mode()``, and for
    ``bf16`` ``torch.autocast(device_type(device), dtype=torch.bfloat16)``. Without torch imported
    (a model that does not use torch) only ``fp32`` is possible and nothing is entered."""
    check_precision(precision)
    torch = sys.modules.get("torch")
    if torch is None:
        if precision != DEFAULT_PRECISION:
            raise UsageError(f"precision {precision!r} needs a torch model (torch is not in use)")
        yield
        return
    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast(device_type(device), dtype=torch.bfloat16):
                yield
        else:
            yield
