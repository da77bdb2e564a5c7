"""The Hugging Face hub, as astropt's ``load_astropt`` uses it (``hf_hub_download`` of one file).

``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_HOME`` are read at call time (huggingface_hub
reads them once at import), so a seeded cache works offline in tests and on compute nodes.
"""

from __future__ import annotations

import os
from pathlib import Path

from fmb.errors import ModelError


class HubMissError(ModelError):
    """The file is neither in the hub cache nor downloadable."""


def offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cache_dir() -> str | None:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def download(repo_id: str, filename: str, revision: str = "") -> tuple[Path, str]:
    """The local path of ``filename`` in ``repo_id`` (cached or downloaded) and its commit."""
    from huggingface_hub import hf_hub_download

    off = offline()
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision or None,
                                    cache_dir=cache_dir(), local_files_only=off))
    except Exception as exc:
        where = "is not in the Hugging Face cache and HF_HUB_OFFLINE=1" if off else \
            f"could not be downloaded ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        raise HubMissError(f"hf:{repo_id}/{filename} {where}") from None
    parts = path.parts
    commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else revision
    return path, commit
