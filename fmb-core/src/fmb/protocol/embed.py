"""Stage 2, embed: stream a dataset through a model into a content-addressed Parquet cache.

Layout under ``$FMB_HOME/embeddings/<model>/<key>/``: ``shard-00000.parquet`` with its done-marker
``shard-00000.json`` (rows, bytes, content hash), ... and ``manifest.json``.

The key is built by core (:func:`cache_key`), not by the plugin, from everything that determines an
embedding: the model's name, version and preprocessing version; every resolved model option (the
spec's ``default_options`` overlaid with what the user passed, as core resolved them) besides what the
plugin's ``settings()`` reports; the content hash of the weights loaded (or, for random weights, the
seed); the data set's name, the options the user passed, its resolved options and its content
fingerprint; the numeric precision of the forward passes (``fp32`` | ``bf16``, see
:mod:`fmb.protocol.accel`); and the cache format. A plugin that forgets an option in ``settings()`` or a data set
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
import sys
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
from fmb.home import cache_dir, fmb_home
from fmb.io import write_json, write_parquet
from fmb.models.base import Model
from fmb.protocol.accel import DEFAULT_PRECISION, check_precision, forward_context, model_device, pin, pin_memory_for
from fmb.protocol.prefetch import prefetch_batches
from fmb.threads import limited

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
    return {
        "name": dataset.name,
        "options": {k: v for k, v in requested.items() if k not in skip},
        "resolved_options": {k: v for k, v in (dataset.options() or {}).items() if k not in skip},
        "fingerprint": dataset.fingerprint,
    }


def cache_key(model: Model, dataset: Dataset, precision: str = DEFAULT_PRECISION) -> tuple[str, dict[str, Any]]:
    """The content hash (24 hex characters) that names a model x dataset embedding at ``precision``, and
    its ingredients.

    Raises ModelError when loaded weights carry no content hash (see ``WeightsInfo.identity``).
    """
    ident = {
        "format": CACHE_FORMAT,
        "model": {
            "name": model.spec.name,
            "version": model.spec.version,
            "preprocessing_version": model.spec.preprocessing_version,
            "options": model_options(model),
            "settings": model.settings(),
            "outputs": model.outputs,
        },
        "weights": model.weights.identity(model.spec.name),
        "dataset": dataset_identity(dataset),
        "precision": check_precision(precision),
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
    #: how each cache shard was embedded (:func:`shard_records`: seconds, device, host, when)
    shards: list[dict[str, Any]] = field(default_factory=list, repr=False)
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


MANIFEST = "manifest.json"


def shard_path(folder: str | Path, index: int, suffix: str = ".parquet") -> Path:
    """``folder/shard-NNNNN.parquet`` (``suffix=".json"``: its done-marker). The one place that names
    cache shards: every reader and writer (:class:`EmbeddingCache`, the executors' progress checks)
    comes through here."""
    return Path(folder) / f"shard-{index:05d}{suffix}"


def entry_path(model: str, key: str) -> Path:
    """The folder of cache entry ``key`` of ``model``: ``$FMB_HOME/embeddings/<model>/<key>``."""
    return fmb_home() / "embeddings" / model / key


class EmbeddingCache:
    """One cache entry: a folder of shards, one done-marker per shard, and a manifest.

    ``shard_size=None`` adopts the layout recorded in the manifest (else the default). Readers that
    know only an entry's folder use :meth:`read_entry`.
    """

    def __init__(
        self, model: Model, dataset: Dataset, shard_size: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> None:
        self.key, self.ident = cache_key(model, dataset, precision)
        self.precision = precision
        self.path = cache_dir("embeddings", model.spec.name, self.key)
        self.manifest_path = self.path / MANIFEST
        self.n = len(dataset)
        header, self.trusted = self._read_manifest()
        recorded = header.get("shard_size") if header else None
        self.shard_size = int(shard_size or recorded or DEFAULT_SHARD_SIZE)
        #: the recorded layout when it differs from the one asked for and was complete (see :meth:`relayout`)
        self.previous_layout = (
            int(recorded)
            if header and recorded and int(recorded) != self.shard_size and header.get("complete")
            else None
        )
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
        return shard_path(self.path, i)

    def marker_file(self, i: int) -> Path:
        return shard_path(self.path, i, ".json")

    def stale_marker(self, i: int) -> bool:
        """True when shard ``i`` has a marker for this key and this layout's rows that no longer matches
        its file (a corrupt or missing shard, not a change of layout)."""
        try:
            entry = json.loads(self.marker_file(i).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(entry, dict) and entry.get("key") == self.key and entry.get("rows") == list(self.rows(i))

    def relayout(self, notice: Callable[[str], None] | None = None) -> bool:
        """When the entry was complete under another shard size, rewrite its rows in this layout from
        the verified shards (no model needed); True when it did. A shard that fails its hash leaves the
        layout as it is (the missing shards are then embedded)."""
        if self.previous_layout is None or self.manifest["complete"]:
            return False
        table, _ = self.read_entry(self.path)
        if table is None or table.num_rows != self.n:
            return False
        for i in range(self.n_shards):
            start, stop = self.rows(i)
            self.write_shard(i, table.slice(start, stop - start), versions(), manifest=False)
        i = self.n_shards
        while self.marker_file(i).exists() or self.shard_file(i).exists():  # shards past the new end
            for f in (self.marker_file(i), self.shard_file(i)):
                f.unlink(missing_ok=True)
            i += 1
        self.write_manifest()
        if notice:
            notice(
                f"embedding cache {self.path}: re-laid out from {self.previous_layout} to {self.shard_size} "
                "objects per shard (no embedding needed)"
            )
        self.previous_layout = None
        return True

    @staticmethod
    def read_entry(path: str | Path) -> tuple[pa.Table | None, str]:
        """(table, "") for a complete cache entry (a folder) whose every shard matches its recorded hash,
        else (None, why). For readers that find a cache by its key (detect, probes, report figures)."""
        return read_verified(path)

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
            return (
                entry is not None
                and f.stat().st_size == entry["bytes"]
                and entry.get("algorithm") == ALGORITHM
                and verify_file(f) == entry["hash"]
            )
        except OSError:
            return False

    def write_shard(
        self,
        i: int,
        table: pa.Table,
        versions: dict[str, str],
        manifest: bool = True,
        made: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write shard ``i`` atomically, then its marker (with ``made``: how it was embedded, see
        :func:`made_by`); refresh the manifest. Returns the marker."""
        f = self.shard_file(i)
        write_parquet(table, f)
        entry = {
            "key": self.key,
            "index": i,
            "rows": list(self.rows(i)),
            "bytes": f.stat().st_size,
            "algorithm": ALGORITHM,
            "hash": verify_file(f),
            "versions": versions,
            **(made or {}),
        }
        write_json(entry, self.marker_file(i))
        self._mine.add(i)
        if manifest:
            self.write_manifest()
        return entry

    def _assemble(self) -> dict[str, Any]:
        shards = {}
        for i in range(self.n_shards):
            if (entry := self._listable(i)) is not None:
                shards[str(i)] = {k: entry.get(k) for k in ("rows", "bytes", "algorithm", "hash", *MADE_KEYS)}
        return {
            "key_ingredients": self.ident,
            "key": self.key,
            "n_objects": self.n,
            "shard_size": self.shard_size,
            "n_shards": self.n_shards,
            "shards": shards,
            "complete": len(shards) == self.n_shards,
            "versions": versions(),
        }

    def write_manifest(self) -> None:
        """Assemble the manifest from the markers and write it until it stays what the markers say.

        Concurrent writers (threads, or Slurm shards on other nodes) each assemble, then rename their
        manifest into place; a writer that assembled before another's marker landed can rename last and
        leave a manifest that misses that shard. So every writer assembles again after its rename and
        rewrites while the markers say more than it wrote: the last rename is then one whose writer saw
        every marker (each marker's writer renames a manifest after writing its marker).
        """
        for _ in range(self.n_shards + 2):  # each round sees at least one more marker
            self.manifest = self._assemble()
            write_json(self.manifest, self.manifest_path)
            unlisted = (i for i in range(self.n_shards) if str(i) not in self.manifest["shards"])
            if not any(self._listable(i) is not None for i in unlisted):
                return

    def _listable(self, i: int) -> dict[str, Any] | None:
        """Shard ``i``'s marker when :meth:`_assemble` lists it (this layout's marker and a file of its
        size), else None."""
        entry = self.marker(i)
        try:
            return entry if entry is not None and self.shard_file(i).stat().st_size == entry["bytes"] else None
        except OSError:
            return None

    def manifest_stale(self) -> bool:
        """True when the manifest on disk does not list what the markers say (a concurrent writer's race,
        or an older build): readers rewrite it so that key-only readers see the same entry."""
        try:
            on_disk = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return True
        return not isinstance(on_disk, dict) or on_disk.get("shards") != self.manifest["shards"]

    def read(self) -> pa.Table:
        return pa.concat_tables([pq.read_table(self.shard_file(i)) for i in range(self.n_shards)])


def read_verified(path: str | Path) -> tuple[pa.Table | None, str]:
    """(table, "") for a complete cache entry whose every shard matches its recorded hash, else
    (None, why). For readers that find a cache by its key (probes, report figures)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        shards = manifest["shards"]
        if not manifest.get("complete"):
            n = int(manifest.get("n_shards") or 0)
            gone = [i for i in range(n) if str(i) not in shards]
            which = f" (shard {gone[0]} of {n} missing)" if gone else ""
            return None, f"the embedding cache {path} is incomplete{which}"
        parts = []
        for i in sorted(shards, key=int):
            f = shard_path(path, int(i))
            rec = shards[i]
            if rec.get("algorithm") != ALGORITHM or verify_file(f) != rec.get("hash"):
                return None, f"embedding cache shard {f} does not match its recorded hash"
            parts.append(pq.read_table(f))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pa.ArrowException) as exc:
        return None, f"the embedding cache {path} is gone or unreadable ({type(exc).__name__})"
    return pa.concat_tables(parts), ""


def uses_torch(model: Model) -> bool:
    """True when one of the model's attributes is a torch module (its forward passes run in torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and any(isinstance(v, torch.nn.Module) for v in vars(model).values())


def check_model_precision(model: Model, precision: str) -> str:
    """``precision`` when ``model`` can run at it: ``fp32`` always, ``bf16`` only for a torch model
    (autocast does nothing to numpy code, and the key must not claim bf16 numbers). UsageError else."""
    check_precision(precision)
    if precision != DEFAULT_PRECISION and not uses_torch(model):
        raise UsageError(
            f"model {model.spec.name!r} runs no torch network: --precision {precision} does not apply (use fp32)"
        )
    return precision


def _embed_rows(
    model: Model,
    dataset: Dataset,
    start: int,
    stop: int,
    batch_size: int,
    advance: Callable[[int], None],
    workers: int = 0,
    precision: str = DEFAULT_PRECISION,
) -> pa.Table:
    """Embed rows ``[start, stop)``: the loader reads and prepares batches (``model.prepare``, pinned on
    CUDA) in ``workers`` threads; each forward pass (``model.embed_prepared``) runs in
    :func:`fmb.protocol.accel.forward_context` (inference mode, ``precision``) on the model's device."""
    device = model_device(model)
    prepare = (lambda b: pin(model.prepare(b))) if pin_memory_for(device) else model.prepare
    parts: list[pa.Table] = []
    for batch, prepared in prefetch_batches(dataset, batch_size, start, stop, workers, prepare):
        with forward_context(device, precision):
            emb = model.embed_prepared(prepared)
        del prepared
        cols: dict[str, Any] = {c: batch.column(c) for c in CARRIED_COLUMNS if c in batch.schema.names}
        for out, dim in model.outputs.items():
            if out not in emb:
                continue
            arr = np.ascontiguousarray(emb[out], dtype=np.float32)
            if arr.shape != (batch.num_rows, dim):
                raise ModelError(
                    f"model {model.spec.name!r}: output {out!r} has shape {arr.shape}, "
                    f"expected ({batch.num_rows}, {dim})"
                )
            cols[out] = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), dim)
        parts.append(pa.table(cols))
        advance(batch.num_rows)
    if not parts:
        raise ModelError(f"dataset {dataset.name!r} yielded no rows for [{start}, {stop})")
    return pa.concat_tables(parts)


#: what a shard's marker (and the manifest) records about how the shard was embedded
MADE_KEYS = ("seconds", "device", "precision", "host", "finished")


def made_by(model: Model, seconds: float, precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """How a shard was embedded: the model's seconds on it, its device and precision, the host and when
    (UTC)."""
    import socket

    from fmb.protocol.environment import utc_now

    device = (getattr(model, "requested", None) or {}).get("device") or getattr(model, "device", None)
    return {
        "seconds": round(seconds, 3),
        "device": None if device is None else str(device),
        "precision": precision,
        "host": socket.gethostname(),
        "finished": utc_now(),
    }


def shard_records(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{index, rows, seconds, device, host, finished}]`` of a manifest's shards, in index order (None
    where a cache written before FMB recorded them lacks a field)."""
    shards = manifest.get("shards") or {}
    return [
        {"index": int(i), "rows": shards[i].get("rows"), **{k: shards[i].get(k) for k in MADE_KEYS}}
        for i in sorted(shards, key=int)
    ]


def versions() -> dict[str, str]:
    return {"fmb": __version__, "python": platform.python_version(), "numpy": np.__version__, "pyarrow": pa.__version__}


def _fill(
    cache: EmbeddingCache,
    indices: Iterable[int],
    model: Model,
    dataset: Dataset,
    batch_size: int,
    advance: Callable[[int], None],
    notice: Callable[[str], None] | None,
    cached_only: bool,
    workers: int,
) -> tuple[int, int, list[int]]:
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
            raise UsageError(
                f"no complete cached embeddings of {model.spec.name!r} on {dataset.name!r} "
                f"(shard {i} of {cache.n_shards} missing): run `fmb embed` first"
            )
        if cache.trusted and cache.stale_marker(i):
            rebuilt.append(i)
            if notice:
                notice(f"embedding cache shard {cache.shard_file(i).name} is corrupt or missing: rebuilding it")
        t0 = time.perf_counter()
        table = _embed_rows(model, dataset, start, stop, batch_size, advance, workers, cache.precision)
        seconds = time.perf_counter() - t0
        now = dataset.fingerprint
        if now != cache.ident["dataset"]["fingerprint"]:
            raise DataError(
                f"dataset {dataset.name!r} changed while it was being embedded (fingerprint "
                f"{cache.ident['dataset']['fingerprint'][:12]} -> {now[:12]}): run again"
            )
        cache.write_shard(i, table, versions(), made=made_by(model, seconds, cache.precision))
        built += 1
    return reused, built, rebuilt


def embed_dataset(
    model: Model,
    dataset: Dataset,
    batch_size: int = 64,
    shard_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    cached_only: bool = False,
    workers: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> EmbedResult:
    """Embed every object (reusing valid cached shards); the table is read from the cache on first use.

    ``shard_size=None`` keeps the cache's recorded layout (else 1024 objects per shard). With
    ``cached_only`` a missing or invalid shard is an error instead of being embedded. ``workers``
    background threads read and prepare (``model.prepare``) dataset batches while the model runs
    (0: inline; default ``DEFAULT_WORKERS``, which ``fmb run --workers`` sets). ``precision``: ``fp32``
    or ``bf16`` (autocast; a different cache entry, see :mod:`fmb.protocol.accel`).
    """
    t0 = time.perf_counter()
    workers = DEFAULT_WORKERS if workers is None else workers
    cache = EmbeddingCache(model, dataset, shard_size, check_model_precision(model, precision))
    if not cached_only:
        cache.relayout(notice)
    with limited():  # torch, BLAS and OpenMP pools at --threads / FMB_THREADS (fmb.threads)
        reused, built, rebuilt = _fill(
            cache,
            range(cache.n_shards),
            model,
            dataset,
            batch_size,
            progress or (lambda n: None),
            notice,
            cached_only,
            workers,
        )
    if not cache.manifest["complete"] or built or cache.manifest_stale():
        cache.write_manifest()
    if not cached_only:
        record_request(model, dataset, cache)
    return EmbedResult(
        cache.key,
        cache.path,
        reused,
        built,
        rebuilt,
        time.perf_counter() - t0,
        loader=cache.read,
        ident=cache.ident,
        shards=shard_records(cache.manifest),
    )


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
    #: the shard had a marker of this layout that no longer matched its file
    rebuilt: bool = False


def embed_shard(
    model: Model,
    dataset: Dataset,
    index: int,
    count: int,
    batch_size: int = 64,
    shard_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    workers: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> ShardResult:
    """Embed shard ``index`` of ``count`` (its row range only, its own files only).

    The cache layout is ``shard_size`` objects per shard, by default ``ceil(n / count)``; a shard
    index past the end of a data set smaller than ``count`` shards has nothing to do.
    """
    t0 = time.perf_counter()
    workers = DEFAULT_WORKERS if workers is None else workers
    size = shard_size or shard_size_for(len(dataset), count)
    cache = EmbeddingCache(model, dataset, size, check_model_precision(model, precision))
    if shard_size is not None and cache.n_shards != count:
        raise UsageError(f"--shard {index}/{count}: a shard size of {size} makes {cache.n_shards} shards")
    if index >= cache.n_shards:
        return ShardResult(cache.key, cache.path, index, count, (len(dataset), len(dataset)), False, None)
    cache.relayout(notice)
    with limited():
        _, built, rebuilt = _fill(
            cache, [index], model, dataset, batch_size, progress or (lambda n: None), notice, False, workers
        )
    record_request(model, dataset, cache)
    return ShardResult(
        cache.key,
        cache.path,
        index,
        count,
        cache.rows(index),
        bool(built),
        cache.marker(index),
        time.perf_counter() - t0,
        bool(rebuilt),
    )


# ------------------------------------------------------------------ requests: detect without the model
#
# ``fmb detect`` and the executors' scoring units must not build the model (loading official weights
# takes up to a minute) just to learn the cache key. Whoever embeds records, per *request* (model name,
# the user's options, the weights asked for, seed, and the data set's identity), the key it resolved to
# and what results.json says about the model. A reader finds the key from the same request.

REQUESTS = "requests"


def _weights_request(weights: str) -> Any:
    """The weights as asked for; a local path is identified by its content (every file's XXH3-128)."""
    from fmb.fingerprint import file_hash

    p = Path(weights)
    if weights in ("auto", "random", "none") or weights.startswith("hf:") or not p.exists():
        return weights
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return {"path_content": {str(f.relative_to(p)) if f != p else p.name: file_hash(f) for f in files}}


def request_identity(
    model: str,
    options: dict[str, Any],
    weights: str,
    seed: int,
    dataset: Dataset,
    precision: str = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """What a user asked for, as far as it decides the embeddings (device and batch size do not;
    precision does)."""
    ident = {
        "format": CACHE_FORMAT,
        "model": model,
        "options": dict(options),
        "weights": _weights_request(weights),
        "seed": seed,
        "dataset": dataset_identity(dataset),
        "precision": check_precision(precision),
    }
    return json.loads(json.dumps(ident, sort_keys=True, default=str))


def _request_file(model: str, ident: dict[str, Any]) -> Path:
    return fmb_home() / "embeddings" / model / REQUESTS / f"{value_hash(ident)[:24]}.json"


def record_request(model: Model, dataset: Dataset, cache: EmbeddingCache) -> None:
    """Record the key and the model's description for the request that built ``model`` (a model built
    by :meth:`fmb.plugins.Registry.load_model` carries it; one built by hand is not recorded)."""
    asked = getattr(model, "requested", None)
    if not asked:
        return
    ident = request_identity(
        model.spec.name, asked["options"], asked["weights"], asked["seed"], dataset, cache.precision
    )
    record = {
        "request": ident,
        "key": cache.key,
        "model": {
            "outputs": dict(model.outputs),
            "weights": model.weights.to_dict(),
            "settings": model.settings(),
            "options": model_options(model),
            "input_adaptation": model.input_adaptation(dataset.schema),
        },
    }
    write_json(json.loads(json.dumps(record, default=str)), _request_file(model.spec.name, ident))


@dataclass
class CachedModel:
    """What a scoring unit needs of a model whose embeddings are cached, without building it:
    its spec, outputs, weights, settings and resolved options, as recorded by :func:`record_request`."""

    spec: Any
    outputs: dict[str, int]
    weights_record: dict[str, Any]
    settings_record: dict[str, Any]
    options: dict[str, Any]
    adaptation: dict[str, Any] | None
    key: str

    @property
    def weights(self) -> Any:
        from fmb.models.base import WeightsInfo

        return WeightsInfo(**self.weights_record)

    @property
    def resolved_options(self) -> dict[str, Any]:
        return dict(self.options)

    def settings(self) -> dict[str, Any]:
        return dict(self.settings_record)

    def input_adaptation(self, schema: pa.Schema) -> dict[str, Any] | None:
        return self.adaptation


def cached_model(
    spec: Any,
    options: dict[str, Any],
    weights: str,
    seed: int,
    dataset: Dataset,
    precision: str = DEFAULT_PRECISION,
) -> CachedModel:
    """The recorded model of a request (see :func:`record_request`). UsageError (one line) when nothing
    was embedded for it: run ``fmb embed`` first."""
    ident = request_identity(spec.name, options, weights, seed, dataset, precision)
    try:
        rec = json.loads(_request_file(spec.name, ident).read_text())
        if rec.get("request") != ident:
            raise ValueError("another request")
        m = rec["model"]
        return CachedModel(
            spec,
            dict(m["outputs"]),
            dict(m["weights"]),
            dict(m["settings"]),
            dict(m["options"]),
            m.get("input_adaptation"),
            str(rec["key"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"no cached embeddings of {spec.name!r} on {dataset.name!r} with these options, weights, "
            f"seed and precision {precision} ({type(exc).__name__}): run `fmb embed` first"
        ) from None


def read_cached(model: CachedModel, dataset: Dataset) -> EmbedResult:
    """The verified embeddings of a recorded request; UsageError (one line) when the entry is incomplete,
    gone or fails its hashes (run ``fmb embed`` again)."""
    t0 = time.perf_counter()
    path = entry_path(model.spec.name, model.key)
    table, why = EmbeddingCache.read_entry(path)
    if table is None:
        raise UsageError(
            f"no complete cached embeddings of {model.spec.name!r} on {dataset.name!r}: {why}: run `fmb embed` first"
        )
    if table.num_rows != len(dataset):
        raise UsageError(
            f"the embedding cache {path} holds {table.num_rows} objects, dataset {dataset.name!r} "
            f"has {len(dataset)}: run `fmb embed` first"
        )
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    n = int(manifest.get("n_shards") or 0)
    return EmbedResult(
        model.key,
        path,
        n,
        0,
        [],
        time.perf_counter() - t0,
        _table=table,
        ident=manifest.get("key_ingredients") or {},
        shards=shard_records(manifest),
    )
