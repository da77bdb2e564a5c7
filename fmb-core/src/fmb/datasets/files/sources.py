"""Source files of the ``parquet`` (and ``euclid-desi``) data sets: discovery, readers, fingerprints.

:class:`SourceFile` is one Parquet or Arrow IPC/feather file (row count and schema from metadata, row
ranges on demand, a content hash for the data-set fingerprint); :func:`resolve_files` turns a file, a
folder or a glob into sorted data files; :func:`rechunk` re-cuts a batch stream to a fixed size.
"""

from __future__ import annotations

import glob as globmod
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmb.data.canonical import DataError
from fmb.fingerprint import file_hash

PARQUET_EXT = (".parquet", ".pq")
ARROW_EXT = (".arrow", ".feather", ".ipc", ".arrows")
DEFAULT_BATCH_ROWS = 256


class SourceFile:
    """One Parquet or Arrow IPC file: row count and schema from metadata, row ranges on demand."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise DataError(f"{self.path}: empty file")
        self.kind = "arrow" if self.path.suffix.lower() in ARROW_EXT else "parquet"
        try:
            self._open()
        except DataError:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: unreadable {self.kind} file ({_one_line(exc)})") from None

    def _open(self) -> None:
        if self.kind == "parquet":
            self._pf = pq.ParquetFile(self.path)
            md = self._pf.metadata
            self.schema = self._pf.schema_arrow
            self._starts = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
        else:
            self._batch_rows = [b.num_rows for b in self._ipc_batches()]
            self._starts = np.cumsum([0, *self._batch_rows])
        self.num_rows = int(self._starts[-1])

    def _ipc_reader(self, source: pa.MemoryMappedFile) -> tuple[Any, pa.Schema]:
        try:
            reader = pa.ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_stream(source)
        return reader, reader.schema

    def _ipc_batches(self) -> Iterator[pa.RecordBatch]:
        source = pa.memory_map(str(self.path), "r")
        reader, self.schema = self._ipc_reader(source)
        if isinstance(reader, pa.ipc.RecordBatchFileReader):
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
        else:
            yield from reader

    def truncate(self, rows: int) -> None:
        """Read only the first ``rows`` rows of this file from now on (a data set ``limit``)."""
        self.num_rows = min(self.num_rows, max(int(rows), 0))

    def read_range(
        self, lo: int, hi: int, columns: list[str] | None = None, chunk: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """Raw record batches covering rows ``[lo, hi)`` of this file, in order."""
        try:
            yield from self._read_range(lo, hi, columns, chunk)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: unreadable {self.kind} data near row {lo} ({_one_line(exc)})") from None

    def _read_range(self, lo: int, hi: int, columns: list[str] | None, chunk: int) -> Iterator[pa.RecordBatch]:
        st = self._starts
        groups = [i for i in range(len(st) - 1) if st[i] < hi and st[i + 1] > lo]
        if not groups:
            return
        pos = int(self._starts[groups[0]])
        if self.kind == "parquet":
            batches: Iterable[pa.RecordBatch] = self._pf.iter_batches(
                batch_size=chunk, row_groups=groups, columns=columns, use_threads=True
            )
        else:
            wanted = set(groups)
            batches = (b.select(columns) if columns else b for i, b in enumerate(self._ipc_batches()) if i in wanted)
        for b in batches:
            a, z = max(lo - pos, 0), min(hi - pos, b.num_rows)
            if z > a:
                yield b.slice(a, z - a)
            pos += b.num_rows
            if pos >= hi:
                return

    def content_hash(self) -> str:
        """Hex digest of every byte of the file (``fmb.fingerprint.file_hash``: streamed, memoised)."""
        try:
            return file_hash(self.path)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the file to fingerprint it ({exc.strerror or exc})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def resolve_files(path: str | os.PathLike) -> list[Path]:
    """A file, a folder (its Parquet/Arrow files) or a glob -> sorted data files."""
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in PARQUET_EXT + ARROW_EXT)
        if not files:
            raise DataError(f"{p}: no Parquet or Arrow files in this folder")
        return files
    matches = sorted(Path(m) for m in globmod.glob(str(p), recursive=True) if Path(m).is_file())
    if not matches:
        raise DataError(f"{p}: no such file, folder or glob match")
    return matches


def rechunk(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Re-cut a stream of same-schema batches into batches of exactly ``size`` rows (last shorter)."""
    buf: list[pa.RecordBatch] = []
    have = 0
    for b in batches:
        while b.num_rows:
            take = min(size - have, b.num_rows)
            buf.append(b.slice(0, take))
            have += take
            b = b.slice(take)
            if have == size:
                yield _concat(buf)
                buf, have = [], 0
    if have:
        yield _concat(buf)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def limit_files(files: list[SourceFile], limit: int | None) -> list[SourceFile]:
    """The files holding the first ``limit`` rows of ``files`` in file order (None: all of them); the last
    file kept is truncated to the remainder, so a limit always selects the same objects."""
    if limit is None:
        return files
    kept, left = [], int(limit)
    for f in files:
        if left <= 0:
            break
        f.truncate(left)
        left -= f.num_rows
        kept.append(f)
    return kept
