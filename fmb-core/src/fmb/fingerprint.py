"""Content hashes: of files (streamed, memoised), of JSON-able values, and of cached artefacts.

One owner for "what identifies these bytes". Files are hashed in full, 1 MiB at a time, with
xxHash's XXH3-128 (the ``xxhash`` package): a well-kept C library that hashes at several GB/s on one
core, about ten times faster than SHA-256 or BLAKE2, so hashing a whole survey on first use costs
seconds rather than minutes. It is not cryptographic; it guards against accidental change (a file
rewritten in place, a flipped byte), which is what a cache key needs. 128 bits make accidental
collisions negligible (~2^-64 after 2^32 distinct files).

Digests of *input* files are memoised under ``$FMB_HOME/hashes/`` keyed by (path, size, mtime_ns,
inode, device): any rewrite (even to the same size) changes the mtime or inode and forces a full
re-hash, so repeated runs over unchanged data only ``stat`` their files. A file modified within
``RACY_SECONDS`` of being hashed is not memoised (its mtime may not yet tell a later edit apart).
Cached *artefacts* (embedding shards, generated synthetic data) are verified with
:func:`verify_file`, which always reads every byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import xxhash

from fmb.home import cache_dir
from fmb.io import write_json

#: names the digest scheme in manifests and memo entries
ALGORITHM = "xxh3_128"
BLOCK = 1 << 20
RACY_SECONDS = 2.0
MEMO_FORMAT = 1


def hash_stream(fh: Any) -> str:
    """Hex XXH3-128 digest (32 hex characters) of a binary file object read to its end."""
    h = xxhash.xxh3_128()
    for chunk in iter(lambda: fh.read(BLOCK), b""):
        h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike) -> str:
    """Hex XXH3-128 digest of every byte of ``path``, never memoised (for verifying cached artefacts).

    Raises OSError when the file cannot be read.
    """
    with open(path, "rb") as fh:
        return hash_stream(fh)


def _stat_key(path: Path, st: os.stat_result) -> dict[str, Any]:
    return {
        "format": MEMO_FORMAT,
        "algorithm": ALGORITHM,
        "path": str(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
        "device": st.st_dev,
    }


def _memo_file(path: Path) -> Path:
    name = hashlib.blake2b(str(path).encode(), digest_size=16).hexdigest()
    return cache_dir("hashes", name[:2]) / f"{name}.json"


def file_hash(path: str | os.PathLike) -> str:
    """Hex XXH3-128 digest of a file's full contents, memoised by (path, size, mtime_ns, inode, device).

    Raises OSError when the file cannot be read.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = _stat_key(p, st)
    memo = _memo_file(p)
    try:
        entry = json.loads(memo.read_text())
        if isinstance(entry, dict) and {k: entry.get(k) for k in key} == key and entry.get("digest"):
            return str(entry["digest"])
    except (OSError, ValueError):
        pass
    for _ in range(3):  # a file rewritten while being read is read again
        with open(p, "rb") as fh:
            digest = hash_stream(fh)
        st = p.stat()
        if _stat_key(p, st) == key:
            break
        key = _stat_key(p, st)
    else:
        raise OSError(f"{p}: the file keeps changing while it is read")
    if time.time() - st.st_mtime_ns / 1e9 > RACY_SECONDS:
        try:
            write_json({**key, "digest": digest}, memo)
        except OSError:  # a read-only FMB_HOME only costs speed
            pass
    return digest


def value_hash(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``value`` (sorted keys; non-JSON values by ``str``)."""
    blob = json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()
