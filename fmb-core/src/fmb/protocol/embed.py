"""Stage 2, embed: stream a dataset through a model into a content-addressed Parquet cache.

Layout under ``$FMB_HOME/embeddings/<model>/<key>/``: ``shard-00000.parquet``, ... and
``manifest.json``. The key is a hash of model name and version, weights, model settings,
dataset fingerprint and the cache format. Each shard is written atomically and recorded in
the manifest (also written atomically) with its SHA-256, so an interrupted run resumes
with the missing shards, and a corrupt or truncated shard is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmb import __version__
from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.errors import ModelError, UsageError
from fmb.home import cache_dir
from fmb.io import write_json, write_parquet
from fmb.models.base import Model

CACHE_FORMAT = 1
DEFAULT_SHARD_SIZE = 1024
CARRIED_COLUMNS = (C.OBJECT_ID, *C.LABEL_COLUMNS)


def cache_key(model: Model, dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """The content hash that names a model x dataset embedding, and what went into it."""
    ident = {
        "format": CACHE_FORMAT,
        "model": model.spec.name,
        "model_version": model.spec.version,
        "weights": model.weights.cache_id,
        "settings": model.settings(),
        "outputs": model.outputs,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
    }
    blob = json.dumps(ident, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24], ident


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class EmbedResult:
    """The embeddings of every object, and how they were obtained."""

    table: pa.Table
    key: str
    path: Path
    reused_shards: int
    built_shards: int
    rebuilt_shards: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reused(self) -> bool:
        return self.built_shards == 0

    def matrix(self, output: str) -> np.ndarray:
        return C.column_array(self.table, output, np.float32)


class EmbeddingCache:
    """One cache entry (a folder of shards plus a manifest)."""

    def __init__(self, model: Model, dataset: Dataset, shard_size: int = DEFAULT_SHARD_SIZE) -> None:
        self.key, self.ident = cache_key(model, dataset)
        self.path = cache_dir("embeddings", model.spec.name, self.key)
        self.manifest_path = self.path / "manifest.json"
        self.n = len(dataset)
        self.shard_size = int(shard_size)
        self.manifest = self._load_manifest()

    def _load_manifest(self) -> dict[str, Any]:
        fresh = {**self.ident, "key": self.key, "n_objects": self.n, "shard_size": self.shard_size,
                 "shards": {}, "complete": False}
        try:
            old = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return fresh
        if old.get("key") != self.key or old.get("shard_size") != self.shard_size or old.get("n_objects") != self.n:
            return fresh
        return old

    @property
    def n_shards(self) -> int:
        return max(1, -(-self.n // self.shard_size))

    def shard_file(self, i: int) -> Path:
        return self.path / f"shard-{i:05d}.parquet"

    def shard_ok(self, i: int) -> bool:
        """True when shard ``i`` is recorded and its bytes match the manifest."""
        entry = self.manifest["shards"].get(str(i))
        f = self.shard_file(i)
        return bool(entry) and f.exists() and f.stat().st_size == entry["bytes"] and sha256_file(f) == entry["sha256"]

    def write_shard(self, i: int, table: pa.Table, versions: dict[str, str]) -> None:
        f = self.shard_file(i)
        write_parquet(table, f)
        self.manifest["shards"][str(i)] = {"rows": [i * self.shard_size, i * self.shard_size + table.num_rows],
                                           "bytes": f.stat().st_size, "sha256": sha256_file(f)}
        self.manifest["complete"] = len(self.manifest["shards"]) == self.n_shards
        self.manifest["versions"] = versions
        write_json(self.manifest, self.manifest_path)

    def read(self) -> pa.Table:
        return pa.concat_tables([pq.read_table(self.shard_file(i)) for i in range(self.n_shards)])


def _embed_rows(model: Model, dataset: Dataset, start: int, stop: int, batch_size: int,
                advance: Callable[[int], None]) -> pa.Table:
    parts: list[pa.Table] = []
    for batch in dataset.iter_batches(batch_size, start=start, stop=stop):
        emb = model.embed(batch)
        cols: dict[str, Any] = {c: batch.column(c) for c in CARRIED_COLUMNS if c in batch.schema.names}
        for out, dim in model.outputs.items():
            if out not in emb:
                continue
            arr = np.ascontiguousarray(emb[out], dtype=np.float32)
            if arr.shape != (batch.num_rows, dim):
                raise ModelError(f"model {model.spec.name!r}: output {out!r} has shape {arr.shape}, "
                                 f"expected ({batch.num_rows}, {dim})")
            cols[out] = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), dim)
        parts.append(pa.table(cols))
        advance(batch.num_rows)
    if not parts:
        raise ModelError(f"dataset {dataset.name!r} yielded no rows for [{start}, {stop})")
    return pa.concat_tables(parts)


def versions() -> dict[str, str]:
    return {"fmb": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pyarrow": pa.__version__}


def embed_dataset(model: Model, dataset: Dataset, batch_size: int = 64,
                  shard_size: int = DEFAULT_SHARD_SIZE,
                  progress: Callable[[int], None] | None = None,
                  notice: Callable[[str], None] | None = None, cached_only: bool = False) -> EmbedResult:
    """Embed every object (reusing valid cached shards) and return the full table.

    With ``cached_only`` a missing or invalid shard is an error instead of being embedded.
    """
    import time

    t0 = time.perf_counter()
    cache = EmbeddingCache(model, dataset, shard_size)
    advance = progress or (lambda n: None)
    reused, built, rebuilt = 0, 0, []
    for i in range(cache.n_shards):
        start, stop = i * cache.shard_size, min(cache.n, (i + 1) * cache.shard_size)
        if cache.shard_ok(i):
            reused += 1
            advance(stop - start)
            continue
        if cached_only:
            raise UsageError(f"no complete cached embeddings of {model.spec.name!r} on {dataset.name!r} "
                             f"(shard {i} of {cache.n_shards} missing): run `fmb embed` first")
        if str(i) in cache.manifest["shards"]:
            rebuilt.append(i)
            if notice:
                notice(f"embedding cache shard {cache.shard_file(i).name} is corrupt or missing: rebuilding it")
        table = _embed_rows(model, dataset, start, stop, batch_size, advance)
        cache.write_shard(i, table, versions())
        built += 1
    return EmbedResult(cache.read(), cache.key, cache.path, reused, built, rebuilt, time.perf_counter() - t0)
