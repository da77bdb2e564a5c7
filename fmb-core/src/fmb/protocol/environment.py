"""The software and hardware environment recorded in every result."""

from __future__ import annotations

import functools
import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fmb import __version__
from fmb.errors import UsageError

PACKAGES = ("numpy", "scipy", "pyarrow", "scikit-learn", "pyod", "pluggy", "click", "torch")


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _torch() -> Any:
    """The torch module, or None where it is not installed (torch is an optional dependency of core)."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


def resolve_device(requested: str) -> str:
    """The torch device to run on, from ``--device``.

    ``auto`` -> ``cuda`` when torch sees a CUDA GPU, else ``cpu`` (``auto`` never picks ``mps``: MPS
    numbers can differ from CPU/CUDA ones, so Apple GPUs are used only when asked for). ``cuda``/``cuda:N``
    without a CUDA device, and ``mps`` where ``torch.backends.mps.is_available()`` is false (or torch is
    not installed), are one-line UsageErrors; so is any other name.
    """
    if requested not in ("auto", "cpu", "cuda", "mps") and not requested.startswith("cuda:"):
        raise UsageError(f"unknown device {requested!r} (expected auto, cpu, cuda, cuda:N or mps)")
    if requested == "cpu":
        return "cpu"
    torch = _torch()
    if requested == "mps":
        mps = getattr(getattr(torch, "backends", None), "mps", None)
        if mps is None or not bool(mps.is_available()):
            raise UsageError("device 'mps' requested but MPS is not available here (Apple GPUs only)")
        return "mps"
    has_cuda = torch is not None and bool(torch.cuda.is_available())
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


#: the model libraries whose versions every result records (None where not installed)
MODEL_LIBRARIES = ("astropt", "polymathic-aion", "zuko", "umap-learn", "torch", "transformers", "huggingface_hub")


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second (``2026-11-30T06:30:39+00:00``)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit FMB runs from when it runs from a checkout (``git rev-parse HEAD`` in the package's
    folder, ``+dirty`` when tracked files changed); None when it is installed (its ``__init__.py`` is not
    a tracked file), git is missing or slow (5 s)."""
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    rev = git("rev-parse", "HEAD")
    if rev and git("status", "--porcelain", "--untracked-files=no", "--", ".."):
        rev += "+dirty"
    return rev


def gpu_info(device: str) -> dict | None:
    """GPU name, count and CUDA version when the run used CUDA and torch is already imported (a model
    plugin imported it): torch is never imported only for this. None otherwise."""
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda"):
        return None
    try:
        if not torch.cuda.is_available():
            return None
        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        return {
            "name": torch.cuda.get_device_name(index),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "device_index": index,
        }
    except Exception:  # a broken driver must not lose the results
        return None


def provenance(started: str, device: str) -> dict:
    """When, where and what: ``started`` (given) and ``finished`` (now) in UTC ISO 8601, the host name, the
    command line, the git revision of a checkout, the GPU and the versions of the model libraries."""
    import socket

    return {
        "started": started,
        "finished": utc_now(),
        "hostname": socket.gethostname(),
        "command": list(sys.argv),
        "git_revision": git_revision(),
        "gpu": gpu_info(device),
        "model_libraries": {p: package_version(p) for p in MODEL_LIBRARIES},
    }
