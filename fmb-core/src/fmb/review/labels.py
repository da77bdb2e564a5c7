"""The saved labels: a versioned Parquet file keyed by object_id, rewritten atomically after every label.

Columns: ``object_id`` (string), ``label`` (one of ``LABELS``), ``note`` (string), ``time`` (UTC, ISO 8601),
``position`` (1-based place in the queue when it was labelled). The schema metadata holds
``fmb_labels_version`` (``VERSION``). Each save writes a temporary file beside the target, flushes it to disk
(fsync) and renames it over the target (``os.replace`` is atomic on POSIX), so a crash leaves either the old
or the new file, never a partial one. ``read_labels`` also reads the CSV that the page exports.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fmb.errors import DataError
from fmb.io import atomic_path

VERSION = 1
LABELS: tuple[str, ...] = ("interesting", "artefact", "boring", "unsure")
#: the single key that gives each label on the page
KEYS: dict[str, str] = {"i": "interesting", "a": "artefact", "b": "boring", "u": "unsure"}
COLUMNS = ("object_id", "label", "note", "time", "position")
SCHEMA = pa.schema(
    [
        ("object_id", pa.string()),
        ("label", pa.string()),
        ("note", pa.string()),
        ("time", pa.string()),
        ("position", pa.int64()),
    ],
    metadata={"fmb_labels_version": str(VERSION)},
)


@dataclass
class Label:
    object_id: str
    label: str
    note: str
    time: str
    position: int


def now() -> str:
    """The current UTC time, ISO 8601 to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def read_labels(path: str | Path) -> dict[str, Label]:
    """Labels from a labels Parquet file or an exported CSV, keyed by object_id.

    Raises DataError (naming the file, and the row or column) for an unreadable file, a newer format version,
    a missing column, an unknown label, or an object_id given twice.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            opts = pacsv.ConvertOptions(
                column_types={"object_id": pa.string(), "note": pa.string(), "time": pa.string(), "label": pa.string()},
                strings_can_be_null=False,
            )
            table = pacsv.read_csv(path, convert_options=opts)
        else:
            table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"labels file {path}: cannot read it ({str(exc).splitlines()[0]})") from exc
    version = (table.schema.metadata or {}).get(b"fmb_labels_version")
    if version is not None and int(version) > VERSION:
        raise DataError(f"labels file {path}: format version {int(version)} is newer than this fmb's {VERSION}")
    missing = [c for c in ("object_id", "label") if c not in table.column_names]
    if missing:
        raise DataError(f"labels file {path}: missing column(s) {', '.join(missing)}")
    cols = {c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows for c in COLUMNS}
    out: dict[str, Label] = {}
    for i in range(table.num_rows):
        oid, lab = cols["object_id"][i], cols["label"][i]
        if oid is None or str(oid) == "":
            raise DataError(f"labels file {path} row {i + 1}: empty object_id")
        if lab not in LABELS:
            raise DataError(f"labels file {path} row {i + 1}: label {lab!r} is not one of {', '.join(LABELS)}")
        if str(oid) in out:
            raise DataError(f"labels file {path} row {i + 1}: object_id {oid} is labelled twice")
        pos = cols["position"][i]
        out[str(oid)] = Label(
            str(oid), lab, cols["note"][i] or "", cols["time"][i] or "", int(pos) if pos is not None else 0
        )
    return out


def to_table(labels: dict[str, Label]) -> pa.Table:
    """The labels as an Arrow table in the file's schema, in labelling order (time, then object_id)."""
    rows = sorted(labels.values(), key=lambda x: (x.time, x.object_id))
    return pa.Table.from_pylist([vars(r) for r in rows], schema=SCHEMA)


class LabelStore:
    """The labels of one review, saved to ``path`` at once on every change (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        self.labels: dict[str, Label] = read_labels(self.path) if self.path.exists() else {}

    def merge(self, prior: dict[str, Label]) -> int:
        """Import prior labels (the later time wins for an object labelled in both); returns how many changed."""
        with self.lock:
            changed = 0
            for oid, lab in prior.items():
                mine = self.labels.get(oid)
                if mine is None or lab.time > mine.time:
                    self.labels[oid] = lab
                    changed += 1
            if changed:
                self._save()
            return changed

    def set(self, object_id: str, label: str, note: str = "", position: int = 0) -> Label:
        """Record (or replace) one label and save; DataError for a label not in ``LABELS``."""
        if label not in LABELS:
            raise DataError(f"label {label!r} is not one of {', '.join(LABELS)}")
        with self.lock:
            lab = Label(str(object_id), label, note or "", now(), int(position))
            self.labels[lab.object_id] = lab
            self._save()
            return lab

    def _save(self) -> None:
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                pq.write_table(to_table(self.labels), fh)
                fh.flush()
                os.fsync(fh.fileno())

    def csv_bytes(self) -> bytes:
        """The labels as CSV (the page's export), header included."""
        sink = pa.BufferOutputStream()
        with self.lock:
            pacsv.write_csv(to_table(self.labels), sink)
        return sink.getvalue().to_pybytes()
