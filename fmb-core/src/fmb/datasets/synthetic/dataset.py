"""The ``synthetic`` dataset: generated chunk by chunk on first use, cached as Parquet shards.

Cache layout, under ``fmb.home.cache_dir("datasets", "synthetic", <fingerprint>)``:
``shard-00000.parquet`` ... (one per chunk, atomic writes), each with a marker ``shard-00000.json``
recording its rows and the content hash of its bytes (``fmb.fingerprint``, written after the shard),
and ``manifest.json`` (written last). Every shard is verified against its recorded hash, reading
every byte, before a process first uses it: a missing, truncated, damaged (even one flipped byte)
or unmarked shard is regenerated with a warning, so damaged data are never embedded. The same
options give identical data.

Splits (``split=all|train|test``, docs/datasets/synthetic.md): ``all`` and ``test`` are the survey's ``size``
objects (ids ``0 .. size-1``; the same objects, bytes and generated-data cache); ``train`` is ``train_size``
additional objects of the same survey model (ids ``size .. size+train_size-1``), generated from a seed derived
from ``seed`` (:func:`generation_seed`), so no training object is ever a survey object.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmb import home, io
from fmb.data import canonical as C
from fmb.data.canonical import DataError
from fmb.datasets.base import Dataset
from fmb.datasets.synthetic.anomalies import ARTEFACT_CLASSES, plan_classes
from fmb.datasets.synthetic.generate import GENERATOR_VERSION, generate_chunk, make_schema, to_record_batch
from fmb.datasets.synthetic.options import SyntheticOptions, resolve_options
from fmb.fingerprint import ALGORITHM, verify_file

log = logging.getLogger(__name__)


def generation_seed(opts: SyntheticOptions) -> int:
    """The seed the objects of ``opts``'s split are generated from: ``seed`` for ``all``/``test``; for
    ``train`` a 63-bit integer drawn from ``SeedSequence(seed, spawn_key=(2,))`` (numpy's independent-stream
    construction; the survey itself uses spawn keys 0 and 1), so the training objects are independent of the
    survey's."""
    if opts.split != "train":
        return opts.seed
    return int(np.random.SeedSequence(opts.seed, spawn_key=(2,)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def first_object_id(opts: SyntheticOptions) -> int:
    """The first object id of the split: 0 (all, test) or ``size`` (train: after every survey id)."""
    return opts.size if opts.split == "train" else 0


MANIFEST = "manifest.json"
#: bump when the on-disk layout of the generated-data cache changes (enters the cache folder's name)
DATA_CACHE_FORMAT = 2


class SyntheticDataset(Dataset):
    """Seeded synthetic Euclid (VIS/Y/J/H) + DESI survey with eight labelled anomaly classes."""

    name = "synthetic"
    artefact_classes = ARTEFACT_CLASSES

    def __init__(self, opts: SyntheticOptions) -> None:
        super().__init__()
        self.opts = opts
        self._schema = make_schema(opts.stamp, opts.generation())
        self._fingerprint = hashlib.sha256(
            json.dumps(
                {"version": GENERATOR_VERSION, "cache_format": DATA_CACHE_FORMAT, "options": opts.generation()},
                sort_keys=True,
            ).encode()
        ).hexdigest()
        self._seed = generation_seed(opts)
        self._first_id = first_object_id(opts)
        self._codes = plan_classes(opts.n_objects, opts.counts, self._seed)
        #: shard index -> its marker (rows, bytes, content hash) as this process verified or wrote it
        self._verified: dict[int, dict] = {}
        #: number of shards this instance generated (for tests and logs)
        self.generated_shards = 0

    # ------------------------------------------------------------------ Dataset interface
    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def object_pool(self) -> str:  # type: ignore[override]
        """Equal ids are the same objects only within one generation: the fingerprint (shared by ``all`` and
        ``test``; ``train`` and any other option give other objects)."""
        return self._fingerprint

    def __len__(self) -> int:
        return self.opts.n_objects

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def options(self) -> dict:
        return {"generator_version": GENERATOR_VERSION, **self.opts.generation(), "split": self.opts.split}

    @property
    def cache_path(self) -> Path:
        """The folder holding this dataset's shards and manifest."""
        return home.cache_dir("datasets", "synthetic", self._fingerprint)

    def shard_path(self, k: int) -> Path:
        """Path of shard ``k``."""
        return self.cache_path / f"shard-{k:05d}.parquet"

    def shard_rows(self, k: int) -> tuple[int, int]:
        """Global row range ``[lo, hi)`` of shard ``k``."""
        lo = k * self.opts.chunk_size
        return lo, min(lo + self.opts.chunk_size, self.opts.n_objects)

    def iter_batches(self, batch_size: int = 256, start: int = 0, stop: int | None = None) -> Iterator[pa.RecordBatch]:
        from fmb.data.validate import validate_batch

        if int(batch_size) < 1:
            raise DataError(f"synthetic: batch_size must be >= 1, got {batch_size}")
        batch_size = int(batch_size)
        start = max(0, int(start))
        stop = len(self) if stop is None else min(int(stop), len(self))
        pending: pa.Table | None = None
        row = start
        for k in range(start // self.opts.chunk_size, -(-stop // self.opts.chunk_size)):
            lo, hi = self.shard_rows(k)
            a, b = max(lo, start), min(hi, stop)
            if a >= b:
                continue
            part = self._read_shard(k).slice(a - lo, b - a)
            pending = part if pending is None else pa.concat_tables([pending, part])
            while pending.num_rows >= batch_size:
                yield self._emit(pending.slice(0, batch_size), row, validate_batch)
                row += batch_size
                pending = pending.slice(batch_size)
        if pending is not None and pending.num_rows:
            yield self._emit(pending, row, validate_batch)
        self._write_manifest_if_complete()

    def read_columns(self, columns: list[str]) -> pa.Table:
        """Small columns for every object, read from the shards column-wise."""
        cols = [c for c in columns if c in self._schema.names]
        tables = []
        for k in range(self.opts.n_chunks):
            self._ensure_shard(k)
            try:
                tables.append(pq.read_table(self.shard_path(k), columns=cols))
            except (OSError, pa.ArrowException):
                self._generate_shard(k)
                tables.append(pq.read_table(self.shard_path(k), columns=cols))
        self._write_manifest_if_complete()
        return pa.concat_tables(tables).cast(pa.schema([self._schema.field(c) for c in cols]))

    def prepare(self) -> Path:
        """Generate every missing shard and the manifest; return the cache folder."""
        for k in range(self.opts.n_chunks):
            self._ensure_shard(k)
        self._write_manifest_if_complete()
        return self.cache_path

    # ------------------------------------------------------------------ shards
    def _emit(self, table: pa.Table, row: int, validate) -> pa.RecordBatch:
        table = table.combine_chunks()
        batch = pa.RecordBatch.from_arrays(
            [
                table.column(i).chunk(0) if table.column(i).num_chunks else pa.array([], f.type)
                for i, f in enumerate(self._schema)
            ],
            schema=self._schema,
        )
        return validate(batch, f"synthetic[{self._fingerprint[:12]}]", row, self.repairs)

    def marker_path(self, k: int) -> Path:
        """Path of shard ``k``'s marker (rows and content hash, written after the shard)."""
        return self.cache_path / f"shard-{k:05d}.json"

    def _marker(self, k: int) -> dict:
        lo, hi = self.shard_rows(k)
        return {"fingerprint": self._fingerprint, "index": k, "rows": [lo, hi], "algorithm": ALGORITHM}

    def _shard_ok(self, k: int) -> dict | None:
        """Shard ``k``'s marker when the shard and its marker exist and every byte matches the recorded hash,
        else None."""
        path = self.shard_path(k)
        try:
            entry = json.loads(self.marker_path(k).read_text())
            if not isinstance(entry, dict) or {key: entry.get(key) for key in self._marker(k)} != self._marker(k):
                return None
            ok = path.stat().st_size == entry.get("bytes") and verify_file(path) == entry.get("hash")
            return entry if ok else None
        except (OSError, ValueError):
            return None

    def _ensure_shard(self, k: int) -> None:
        if k in self._verified:
            return
        entry = self._shard_ok(k)
        if entry is None:
            self._generate_shard(k)
        else:
            self._verified[k] = entry

    def _generate_shard(self, k: int) -> None:
        lo, hi = self.shard_rows(k)
        if self.shard_path(k).exists():
            log.warning(
                "synthetic: cached shard %s does not match its recorded content hash (damaged, "
                "truncated or unmarked); regenerating it",
                self.shard_path(k),
            )
        res = generate_chunk(
            self._seed, k, self._codes[lo:hi], self._first_id + lo, self.opts.stamp, self.opts.strengths
        )
        table = pa.Table.from_batches([to_record_batch(res, self._schema)])
        del res
        # The old marker stays until the new one replaces it (both writes atomic): a process that generates the
        # same shard at the same time (Slurm array tasks sharing FMB_HOME) never finds the marker missing, and a
        # marker whose hash does not match the file only makes a reader regenerate.
        io.write_parquet(table, self.shard_path(k), compression="zstd", use_dictionary=[C.ANOMALY_CLASS])
        path = self.shard_path(k)
        entry = {**self._marker(k), "bytes": path.stat().st_size, "hash": verify_file(path)}
        io.write_json(entry, self.marker_path(k))
        self.generated_shards += 1
        self._verified[k] = entry

    def _read_shard(self, k: int) -> pa.Table:
        self._ensure_shard(k)
        try:
            return pq.read_table(self.shard_path(k))
        except (OSError, pa.ArrowException):
            self._generate_shard(k)
            return pq.read_table(self.shard_path(k))

    def _write_manifest_if_complete(self) -> None:
        path = self.cache_path / MANIFEST
        if path.exists() or len(self._verified) < self.opts.n_chunks:
            return
        shards = []
        for k in range(self.opts.n_chunks):
            # what this process verified, not the marker file again: another process may be rewriting it
            entry = self._verified[k]
            shards.append(
                {
                    "file": self.shard_path(k).name,
                    "rows": entry["rows"][1] - entry["rows"][0],
                    "bytes": entry["bytes"],
                    "hash": entry["hash"],
                    "algorithm": ALGORITHM,
                }
            )
        counts = dict(zip(*np.unique(np.asarray(self._codes), return_counts=True)))
        io.write_json(
            {
                "dataset": "synthetic",
                "generator_version": GENERATOR_VERSION,
                "fingerprint": self._fingerprint,
                "options": self.opts.generation(),
                "num_rows": self.opts.n_objects,
                "class_counts": self.opts.counts,
                "normal": int(counts.get(0, 0)),
                "shards": shards,
            },
            path,
        )


def open_dataset(
    size: int | str = 2000,
    seed: int | str = 0,
    chunk_size: int | str = 250,
    anomaly_rate: float | str | None = None,
    rates: dict | str | None = None,
    strengths: dict | str | None = None,
    stamp: int | str = 64,
    split: str = "all",
    train_size: int | str | None = None,
    **unknown: object,
) -> SyntheticDataset:
    """Open the synthetic survey (generated lazily, cached under FMB_HOME).

    ``size`` objects, ``seed``; ``chunk_size`` objects per generated shard; ``anomaly_rate`` total anomaly
    fraction spread over the eight classes (default 0.05; 0 when ``rates`` is given); ``rates`` class ->
    fraction (dict, JSON or ``"lens=0.1;agn=0.02"``); ``strengths`` class -> visibility factor (default 1);
    ``stamp`` image size in pixels (0.1"/px); ``split`` ``all`` (default) or ``test``: the survey's ``size``
    objects, ``train``: ``train_size`` (default ``size``) additional objects, disjoint from the survey (module
    docstring). Bad values raise a one-line DataError.
    """
    if unknown:
        raise DataError(
            f"synthetic: unknown option(s) {', '.join(sorted(unknown))} (known: size, seed, "
            "chunk_size, anomaly_rate, rates, strengths, stamp, split, train_size)"
        )
    return SyntheticDataset(
        resolve_options(
            size=size,
            seed=seed,
            chunk_size=chunk_size,
            anomaly_rate=anomaly_rate,
            rates=rates,
            strengths=strengths,
            stamp=stamp,
            split=split,
            train_size=train_size,
        )
    )
