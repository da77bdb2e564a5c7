"""The Hugging Face hub, for every model plugin: one file or a snapshot, from the local cache or downloaded.

``huggingface_hub`` is imported lazily (only when a download is asked for). Its environment is read at
call time, not at its import: ``HF_HUB_OFFLINE`` (``1``/``true``/``yes``/``on``: the cache only),
``HF_HUB_CACHE`` / ``HF_HOME`` (where the cache is), ``HF_ENDPOINT`` (the hub), ``HF_TOKEN`` (gated repos).
So a seeded cache works offline in tests and on compute nodes.

Lookup order: the local cache first (no network round trip when the file is there); then, unless offline,
the hub, after a quick TCP check so that an unreachable hub fails in seconds instead of after retries.
Offline, a repo id is matched against the cache ignoring case (hub ids are case-insensitive online; the
cache folder keeps the spelling of the first download).

Every failure is one :class:`HubError` line naming ``hf:REPO/FILE@REV`` and the reason: a gated repo
(request access, set ``HF_TOKEN``), a repo, revision or file that does not exist, the cache missing it
while offline, the hub unreachable. A model plugin's ``--weights auto`` falls back to random weights on a
:class:`HubError` (see :func:`fmb.protocol.weights.resolve_source`); ``--weights hf:...`` does not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fmb.errors import ModelError

TRUE = ("1", "true", "yes", "on")


class HubError(ModelError):
    """A file or snapshot is neither in the hub cache nor downloadable (one line: what and why)."""


@dataclass(frozen=True)
class HubPath:
    """A local file (or snapshot folder) from the hub and the commit it was taken at (``""`` if unknown)."""

    path: Path
    repo: str
    revision: str


def offline() -> bool:
    """Whether the hub must not be contacted: ``HF_HUB_OFFLINE`` as set now, else huggingface_hub's constant
    (what it read at import)."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    if env:
        return env in TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cache_dir() -> str | None:
    """The hub cache folder set in the environment (``HF_HUB_CACHE``, else ``$HF_HOME/hub``), else None
    (huggingface_hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


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
    """The commit hash in a hub cache path (``.../snapshots/<sha>[/file]``), else ``""``."""
    m = re.search(r"snapshots[/\\]([0-9a-f]{40})(?:[/\\]|$)", str(path))
    return m.group(1) if m else ""


def cached_repo_id(repo_id: str) -> str:
    """``repo_id`` spelt as the local cache spells it (``models--OWNER--NAME``), matched ignoring case.

    Raises :class:`HubError` when the cache holds the repo under several spellings.
    """
    from huggingface_hub import constants

    root = Path(cache_dir() or constants.HF_HUB_CACHE)
    want = "models--" + repo_id.replace("/", "--")
    if (root / want).is_dir() or not root.is_dir():
        return repo_id
    hits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() == want.lower())
    if len(hits) > 1:
        raise HubError(
            f"hf:{repo_id}: the hub cache {root} holds it under several spellings "
            f"({', '.join(hits)}); remove all but one"
        )
    return hits[0][len("models--") :].replace("--", "/", 1) if hits else repo_id


def _what(repo: str, filename: str, revision: str) -> str:
    return f"hf:{repo}" + (f"/{filename}" if filename else "") + (f"@{revision}" if revision else "")


def _fetch(repo: str, filename: str, revision: str, local_only: bool, patterns: list[str] | None) -> Path:
    """One huggingface_hub call; its exceptions mapped to one-line :class:`HubError`."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = _what(repo, filename, revision)
    try:
        if filename:
            return Path(
                hf_hub_download(
                    repo, filename, revision=revision or None, cache_dir=cache_dir(), local_files_only=local_only
                )
            )
        return Path(
            snapshot_download(
                repo,
                revision=revision or None,
                allow_patterns=patterns,
                cache_dir=cache_dir(),
                local_files_only=local_only,
            )
        )
    except GatedRepoError:  # before RepositoryNotFoundError: it is a subclass
        raise HubError(
            f"{what}: the repository is gated: request access at https://huggingface.co/{repo}, "
            "then set HF_TOKEN (or run `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise HubError(f"{what}: revision {revision!r} not found in {repo}") from None
    except RepositoryNotFoundError:
        raise HubError(
            f"{what}: repository not found or not accessible (a private repository needs HF_TOKEN)"
        ) from None
    except LocalEntryNotFoundError:
        why = (
            "HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache"
            if offline()
            else "it is not in the local Hugging Face cache"
        )
        raise HubError(f"{what}: {why} ({cache_dir() or 'the default cache'})") from None
    except EntryNotFoundError:
        raise HubError(f"{what}: the repository has no such file") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise HubError(f"{what}: download failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None


def _lacking(folder: Path, require: tuple[str, ...]) -> list[str]:
    return [rel for rel in require if not (folder / rel).is_file()]


def _get(repo: str, filename: str, revision: str, patterns: list[str] | None, require: tuple[str, ...] = ()) -> HubPath:
    off = offline()
    if off:
        repo = cached_repo_id(repo)
    try:  # the cache first: no network round trip when the file is there
        path = _fetch(repo, filename, revision, True, patterns)
        missing = _lacking(path, require)
        if missing:  # an incomplete snapshot in the cache: a miss
            raise HubError(
                f"{_what(repo, filename, revision)}: the cached snapshot lacks {', '.join(missing)}"
                + (" and HF_HUB_OFFLINE=1" if off else "")
            )
    except HubError:
        if off:
            raise
        if not reachable():
            raise HubError(
                f"{_what(repo, filename, revision)}: it is not in the local Hugging Face cache and the "
                f"hub ({os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}) is unreachable"
            ) from None
        path = _fetch(repo, filename, revision, False, patterns)
        missing = _lacking(path, require)
        if missing:
            raise HubError(f"{_what(repo, filename, revision)}: the repository has no {', '.join(missing)}") from None
    return HubPath(path, repo, revision_of(path) or revision)


def download(repo: str, filename: str, revision: str = "") -> HubPath:
    """The local path of ``filename`` in ``repo`` (at ``revision``, default ``main``): cached or downloaded.

    Raises :class:`HubError` (one line, see the module docstring).
    """
    return _get(repo, filename, revision, None)


def snapshot(
    repo: str, revision: str = "", allow_patterns: list[str] | None = None, require: tuple[str, ...] = ()
) -> HubPath:
    """The local snapshot folder of ``repo`` holding the files matching ``allow_patterns`` (all if None).

    ``require``: paths inside the snapshot that must be there; a cached snapshot lacking one counts as a
    cache miss (the hub is asked unless offline). Raises :class:`HubError` (one line).
    """
    return _get(repo, "", revision, allow_patterns, require)
