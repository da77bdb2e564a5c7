"""The software and hardware environment recorded in every result."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from fmb import __version__
from fmb.errors import UsageError

PACKAGES = ("numpy", "scipy", "pyarrow", "scikit-learn", "pyod", "pluggy", "click", "torch")


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if requested not in ("auto", "cpu", "cuda") and not requested.startswith("cuda:"):
        raise UsageError(f"unknown device {requested!r} (expected auto, cpu or cuda)")
    if requested == "cpu":
        return "cpu"
    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise UsageError(f"device {requested!r} requested but no CUDA device is available")
    return requested


def environment(device: str, seed: int) -> dict:
    """Python, platform, package versions, device and seed."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "fmb": __version__,
        "packages": {p: package_version(p) for p in PACKAGES},
        "device": device,
        "seed": seed,
    }
