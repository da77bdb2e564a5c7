"""Where FMB keeps its caches: ``$FMB_HOME``, else the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def fmb_home() -> Path:
    """The FMB home directory (created on demand). Nothing is ever written inside packages."""
    env = os.environ.get("FMB_HOME")
    path = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("fmb"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """A sub-directory of the FMB home, e.g. ``cache_dir("datasets", "synthetic")``."""
    path = fmb_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
