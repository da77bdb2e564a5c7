"""Stage 2, embed: stream a dataset through a model into a content-addressed Parquet cache.

Layout under ``$FMB_HOME/embeddings/<model>/<key>/``: ``shard-00000.parquet`` with its done-marker
``shard-00000.json`` (rows, bytes, content hash), ... and ``manifest.json``.

The key is built by core (:func:`cache_key`), not by the plugin, from everything that determines an
embedding: the model's name, version and preprocessing version; every resolved model option (the
spec's ``default_options`` overlaid with what the user passed, as core resolved them) besides what the
plugin's ``settings()`` reports; the content hash of the weights loaded (or, for random weights, the
seed); the data set's name, the options the user passed, its resolved options and its content
fingerprint; and the cache format. A plugin that forgets an option in ``settings()`` or a data set
whose fingerprint ignores an option cannot alias two configurations. The ingredients are recorded in
the manifest and in results.json (``embedding.key_ingredients``).

Every shard is verified against its recorded content hash (every byte read) each time it is reused.

Each shard is written atomically, then its marker (also atomically), so a shard counts as done only
once both exist and agree: nothing half-written is ever read as complete, an interrupted run resumes
with the missing shards, and a corrupt or truncated shard is rebuilt. Markers are per shard, so
concurrent writers (Slurm array tasks, each embedding ``--shard i/N``) never race on one file; the
manifest is assembled from the markers by whoever writes or reads the cache, and records the shard
layout (``shard_size``) that readers adopt.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmb import __version__
from fmb.data import canonical as C
from fmb.datasets.base import Dataset
from fmb.errors import DataError, ModelError, UsageError
from fmb.fingerprint import ALGORITHM, value_hash, verify_file
from fmb.home import cache_dir
from fmb.io import write_json, write_parquet
from fmb.models.base import Model
from fmb.protocol.prefetch import prefetch_batches

#: 3: the key covers resolved options, preprocessing version, weights content and dataset options;
#: shards carry XXH3-128 content hashes
CACHE_FORMAT = 3
DEFAULT_SHARD_SIZE = 1024
DEFAULT_WORKERS = 1
CARRIED_COLUMNS = (C.OBJECT_ID, *C.LABEL_COLUMNS)


def model_options(model: Model) -> dict[str, Any]:
    """The model's resolved options: what core resolved in ``load_model`` (the spec's
    ``default_options`` overlaid with the user's options), else the defaults overlaid with
    ``model.options`` for a model built outside core."""
    resolved = getattr(model, "resolved_options", None)
    if resolved is None:
        resolved = {**model.spec.default_options, **(model.options or {})}
    return dict(resolved)


def dataset_identity(dataset: Dataset) -> dict[str, Any]:
    """What identifies a data set's objects: name, the options passed (as core received them), the
    resolved options and the content fingerprint. Options the data set lists in ``NOT_FINGERPRINTED``
    (where the files are, read sizes) are left out: its fingerprint covers their content."""
    skip = set(getattr(dataset, "NOT_FINGERPRINTED", ()) or ())
    requested = getattr(dataset, "requested_options", None) or {}
    return {"name": dataset.name,
            "options": {k: v for k, v in requested.items() if k not in skip},
            "resolved_options": {k: v for k, v in (dataset.options() or {}).items() if k not in skip},
            "fingerprint": dataset.fingerprint}


def cache_key(model: Model, dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """The content hash (24 hex characters) that names a model x dataset embedding, and its ingredients.

    Raises ModelError when loaded weights carry no content hash (see ``WeightsInfo.identity``).
    """
    ident = {
        "format": CACHE_FORMAT,
        "model": {"name": model.spec.name, "version": model.spec.version,
                  "preprocessing_version": model.spec.preprocessing_version,
                  "options": model_options(model), "settings": model.settings(), "outputs": model.outputs},
        "weights": model.weights.identity(model.spec.name),
        "dataset": dataset_identity(dataset),
    }
    ident = json.loads(json.dumps(ident, sort_keys=True, default=str))  # what is hashed is what is recorded
    return value_hash(ident)[:24], ident


def shard_size_for(n_objects: int, n_shards: int) -> int:
    """The cache shard size that splits ``n_objects`` into at most ``n_shards`` shards."""
    if n_shards < 1:
        raise UsageError(f"the number of shards must be positive, got {n_shards}")
    return max(1, -(-n_objects // n_shards))


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``: shard 3 (0-based) of 8."""
    i, sep, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text!r}: expected I/N with 0 <= I < N (e.g. 0/4)")
    return index, count


@dataclass
class EmbedResult:
    """The embeddings of every object (read from the cache on first use), and how they were obtained."""

    key: str
    path: Path
    reused_shards: int
    built_shards: int
    rebuilt_shards: list[int] = field(default_factory=list)
    seconds: float = 0.0
    loader: Callable[[], pa.Table] | None = field(default=None, repr=False)
    #: what went into the key (see :func:`cache_key`)
    ident: dict[str, Any] = field(default_factory=dict, repr=False)
    _table: pa.Table | None = field(default=None, repr=False)

    @property
    def reused(self) -> bool:
        return self.built_shards == 0

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            if self.loader is None:
                raise ValueError("this result holds no table (a single shard was embedded)")
            self._table = self.loader()
        return self._table

    def matrix(self, output: str) -> np.ndarray:
        return C.column_array(self.table, output, np.float32)


class EmbeddingCache:
    """One cache entry: a folder of shards, one done-marker per shard, and a manifest.

    ``shard_size=None`` adopts the layout recorded in the manifest (else the default).
    """

    def __init__(self, model: Model, dataset: Dataset, shard_size: int | None = None) -> None:
        self.key, self.ident = cache_key(model, dataset)
        self.path = cache_dir("embeddings", model.spec.name, self.key)
        self.manifest_path = self.path / "manifest.json"
        self.n = len(dataset)
        header, self.trusted = self._read_manifest()
        recorded = header.get("shard_size") if header else None
        self.shard_size = int(shard_size or recorded or DEFAULT_SHARD_SIZE)
        self._mine: set[int] = set()  # shards written by this instance (trusted even if the manifest is not)
        self.manifest = self._assemble()

    def _read_manifest(self) -> tuple[dict[str, Any] | None, bool]:
        """(header, trusted): an unreadable or foreign manifest means the markers are not trusted."""
        try:
            old = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None, True
        except (OSError, ValueError):
            return None, False
        if not isinstance(old, dict) or old.get("key") != self.key or old.get("n_objects") != self.n:
            return None, False
        return old, True

    @property
    def n_shards(self) -> int:
        return max(1, -(-self.n // self.shard_size))

    def rows(self, i: int) -> tuple[int, int]:
        return i * self.shard_size, min(self.n, (i + 1) * self.shard_size)

    def shard_file(self, i: int) -> Path:
        return self.path / f"shard-{i:05d}.parquet"

    def marker_file(self, i: int) -> Path:
        return self.path / f"shard-{i:05d}.json"

    def marker(self, i: int) -> dict[str, Any] | None:
        """Shard ``i``'s done-marker if it belongs to this key and layout (bytes not yet checked)."""
        if not self.trusted and i not in self._mine:
            return None
        try:
            entry = json.loads(self.marker_file(i).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != self.key or entry.get("rows") != list(self.rows(i)):
            return None
        return entry

    def shard_ok(self, i: int) -> bool:
        """True when shard ``i`` has a marker and its bytes match it."""
        entry = self.marker(i)
        f = self.shard_file(i)
        try:
            return (entry is not None and f.stat().st_size == entry["bytes"]
                    and entry.get("algorithm") == ALGORITHM and verify_file(f) == entry["hash"])
        except OSError:
            return False

    def write_shard(self, i: int, table: pa.Table, versions: dict[str, str]) -> dict[str, Any]:
        """Write shard ``i`` atomically, then its marker; refresh the manifest. Returns the marker."""
        f = self.shard_file(i)
        write_parquet(table, f)
        entry = {"key": self.key, "index": i, "rows": list(self.rows(i)), "bytes": f.stat().st_size,
                 "algorithm": ALGORITHM, "hash": verify_file(f), "versions": versions}
        write_json(entry, self.marker_file(i))
        self._mine.add(i)
        self.write_manifest()
        return entry

    def _assemble(self) -> dict[str, Any]:
        shards = {}
        for i in range(self.n_shards):
            entry, f = self.marker(i), self.shard_file(i)
            if entry is not None and f.exists() and f.stat().st_size == entry["bytes"]:
                shards[str(i)] = {k: entry.get(k) for k in ("rows", "bytes", "algorithm", "hash")}
        return {"key_ingredients": self.ident, "key": self.key, "n_objects": self.n, "shard_size": self.shard_size,
                "n_shards": self.n_shards, "shards": shards, "complete": len(shards) == self.n_shards,
                "versions": versions()}

    def write_manifest(self) -> None:
        """Assemble the manifest from the markers (harmless if concurrent writers do the same)."""
        self.manifest = self._assemble()
        write_json(self.manifest, self.manifest_path)

    def read(self) -> pa.Table:
        return pa.concat_tables([pq.read_table(self.shard_file(i)) for i in range(self.n_shards)])


def read_verified(path: str | Path) -> tuple[pa.Table | None, str]:
    """(table, "") for a complete cache entry whose every shard matches its recorded hash, else
    (None, why). For readers that find a cache by its key (probes, report figures)."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        shards = manifest["shards"]
        if not manifest.get("complete"):
            return None, f"the embedding cache {path} is incomplete"
        parts = []
        for i in sorted(shards, key=int):
            f = path / f"shard-{int(i):05d}.parquet"
            rec = shards[i]
            if rec.get("algorithm") != ALGORITHM or verify_file(f) != rec.get("hash"):
                return None, f"embedding cache shard {f} does not match its recorded hash"
            parts.append(pq.read_table(f))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pa.ArrowException) as exc:
        return None, f"the embedding cache {path} is gone or unreadable ({type(exc).__name__})"
    return pa.concat_tables(parts), ""


def _embed_rows(model: Model, dataset: Dataset, start: int, stop: int, batch_size: int,
                advance: Callable[[int], None], workers: int = 0) -> pa.Table:
    parts: list[pa.Table] = []
    for batch in prefetch_batches(dataset, batch_size, start, stop, workers):
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


def _fill(cache: EmbeddingCache, indices: Iterable[int], model: Model, dataset: Dataset, batch_size: int,
          advance: Callable[[int], None], notice: Callable[[str], None] | None, cached_only: bool,
          workers: int) -> tuple[int, int, list[int]]:
    """Make shards ``indices`` valid (reuse or embed); returns (reused, built, rebuilt)."""
    reused, built, rebuilt = 0, 0, []
    if not cache.trusted and notice and not cached_only:
        notice(f"embedding cache manifest {cache.manifest_path} is unreadable: rebuilding its shards")
    for i in indices:
        start, stop = cache.rows(i)
        if cache.shard_ok(i):
            reused += 1
            advance(stop - start)
            continue
        if cached_only:
            raise UsageError(f"no complete cached embeddings of {model.spec.name!r} on {dataset.name!r} "
                             f"(shard {i} of {cache.n_shards} missing): run `fmb embed` first")
        if cache.trusted and cache.marker_file(i).exists():
            rebuilt.append(i)
            if notice:
                notice(f"embedding cache shard {cache.shard_file(i).name} is corrupt or missing: rebuilding it")
        table = _embed_rows(model, dataset, start, stop, batch_size, advance, workers)
        now = dataset.fingerprint
        if now != cache.ident["dataset"]["fingerprint"]:
            raise DataError(f"dataset {dataset.name!r} changed while it was being embedded (fingerprint "
                            f"{cache.ident['dataset']['fingerprint'][:12]} -> {now[:12]}): run again")
        cache.write_shard(i, table, versions())
        built += 1
    return reused, built, rebuilt


def embed_dataset(model: Model, dataset: Dataset, batch_size: int = 64,
                  shard_size: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  notice: Callable[[str], None] | None = None, cached_only: bool = False,
                  workers: int | None = None) -> EmbedResult:
    """Embed every object (reusing valid cached shards); the table is read from the cache on first use.

    ``shard_size=None`` keeps the cache's recorded layout (else 1024 objects per shard). With
    ``cached_only`` a missing or invalid shard is an error instead of being embedded. ``workers``
    background threads prepare dataset batches while the model runs (0: inline; default
    ``DEFAULT_WORKERS``, which ``fmb run --workers`` sets).
    """
    t0 = time.perf_counter()
    workers = DEFAULT_WORKERS if workers is None else workers
    cache = EmbeddingCache(model, dataset, shard_size)
    reused, built, rebuilt = _fill(cache, range(cache.n_shards), model, dataset, batch_size,
                                   progress or (lambda n: None), notice, cached_only, workers)
    if not cache.manifest["complete"] or built:
        cache.write_manifest()
    return EmbedResult(cache.key, cache.path, reused, built, rebuilt, time.perf_counter() - t0, loader=cache.read,
                       ident=cache.ident)


@dataclass
class ShardResult:
    """What ``embed_shard`` did: the cache entry, the shard's index and rows, and its marker."""

    key: str
    path: Path
    index: int
    count: int
    rows: tuple[int, int]
    built: bool
    marker: dict[str, Any] | None
    seconds: float = 0.0


def embed_shard(model: Model, dataset: Dataset, index: int, count: int, batch_size: int = 64,
                shard_size: int | None = None, progress: Callable[[int], None] | None = None,
                notice: Callable[[str], None] | None = None, workers: int | None = None) -> ShardResult:
    """Embed shard ``index`` of ``count`` (its row range only, its own files only).

    The cache layout is ``shard_size`` objects per shard, by default ``ceil(n / count)``; a shard
    index past the end of a data set smaller than ``count`` shards has nothing to do.
    """
    t0 = time.perf_counter()
    workers = DEFAULT_WORKERS if workers is None else workers
    size = shard_size or shard_size_for(len(dataset), count)
    cache = EmbeddingCache(model, dataset, size)
    if shard_size is not None and cache.n_shards != count:
        raise UsageError(f"--shard {index}/{count}: a shard size of {size} makes {cache.n_shards} shards")
    if index >= cache.n_shards:
        return ShardResult(cache.key, cache.path, index, count, (len(dataset), len(dataset)), False, None)
    _, built, _ = _fill(cache, [index], model, dataset, batch_size, progress or (lambda n: None), notice,
                        False, workers)
    return ShardResult(cache.key, cache.path, index, count, cache.rows(index), bool(built),
                       cache.marker(index), time.perf_counter() - t0)
