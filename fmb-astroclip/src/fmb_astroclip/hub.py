"""Official weights from the Hugging Face hub (or its local cache) with huggingface_hub."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fmb.errors import ModelError

OFFICIAL_REPO = "polymathic-ai/astroclip"
OFFICIAL_FILE = "astroclip.ckpt"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint answers a TCP connection within ``timeout`` seconds (no retries)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def revision_of(path: str | Path) -> str:
    """The commit hash in a hub cache path (``.../snapshots/<sha>/file``), else ``""``."""
    m = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", str(path))
    return m.group(1) if m else ""


def download(repo: str = OFFICIAL_REPO, filename: str = OFFICIAL_FILE, revision: str | None = None,
             cache_only: bool = False) -> Path:
    """The local path of ``repo/filename`` (from the cache, or downloaded unless offline / ``cache_only``).

    ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are read at call time (not when huggingface_hub was imported).

    Raises ModelError with one line when it is neither cached nor downloadable.
    """
    from huggingface_hub import hf_hub_download

    cache_only = cache_only or _offline()
    if not cache_only:
        try:  # the cache first: no network round trip when the file is there
            return download(repo, filename, revision, cache_only=True)
        except ModelError:
            if not reachable():
                raise ModelError(f"astroclip: {repo}/{filename}@{revision or 'main'} is not in the local cache "
                                 "and the hub is unreachable") from None
    try:
        return Path(hf_hub_download(repo, filename, revision=revision or None,
                                    cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                                    local_files_only=cache_only))
    except Exception as exc:  # network, auth, missing file: all end the same way
        where = "in the local cache" if cache_only else "on the hub or in the cache"
        raise ModelError(f"astroclip: {repo}/{filename}@{revision or 'main'} not found {where} "
                         f"({type(exc).__name__})") from exc
