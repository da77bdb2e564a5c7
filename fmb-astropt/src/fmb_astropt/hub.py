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
    if off:
        repo_id = cached_repo_id(repo_id)
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


def cached_repo_id(repo_id: str) -> str:
    """``repo_id`` spelt as the local hub cache spells it. Hub ids are case-insensitive online
    (``smith42/astropt_v2.0``, as astropt's README writes it, is ``Smith42/astroPT_v2.0``), but the cache
    folder ``models--OWNER--NAME`` keeps the spelling of the first download; offline, match it ignoring case."""
    from huggingface_hub import constants

    root = Path(cache_dir() or constants.HF_HUB_CACHE)
    want = "models--" + repo_id.replace("/", "--")
    if (root / want).is_dir() or not root.is_dir():
        return repo_id
    hits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() == want.lower())
    if len(hits) > 1:
        raise HubMissError(f"hf:{repo_id}: the hub cache {root} holds it under several spellings "
                           f"({', '.join(hits)}); remove all but one")
    return hits[0][len("models--"):].replace("--", "/", 1) if hits else repo_id
