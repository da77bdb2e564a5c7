"""Dataset ``parquet``: a user's own Parquet or Arrow (IPC/feather) files, mapped onto canonical fields.

``columns`` maps a canonical name to a source column, as a TOML table or as a CLI string
``"object_id=id;flux=spec_flux;image=cutout"``. A value may name a struct member with a dot
(``flux=spectrum.flux``) or list several columns with commas: for ``image`` one column per
band (stacked in order), for ``object_id`` fallbacks (the first non-null is used).
Canonical names: object_id, image, rgb, flux, ivar, error, mask, wavelength, is_anomaly,
anomaly_class, redshift, log_mstar, log_sfr. Without ``columns`` every canonical name present
in the file is used as is.

Images may be fixed-size lists (give ``image_shape``), nested lists, or encoded bytes (PNG/JPEG
via Pillow, ``.npy``; also Hugging Face ``Image`` structs ``{bytes, path}``). Spectra give
``ivar`` or ``error``; ``ivar = 1/error**2`` where the error is finite and > 0, else ``ivar = 0``
and ``mask = True`` (counted as ``spectrum_invalid_error_masked``). The reading machinery here is
shared with the ``euclid-desi`` dataset.
"""

from __future__ import annotations

import dataclasses
import glob as globmod
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmb.data import canonical as C
from fmb.data.canonical import DataError, Repairs, storage
from fmb.data.validate import check_unique_ids, row_label, validate_batch
from fmb.datasets.base import Dataset
from fmb.fingerprint import ALGORITHM, file_hash, value_hash

PARQUET_EXT = (".parquet", ".pq")
ARROW_EXT = (".arrow", ".feather", ".ipc", ".arrows")
CANONICAL_KEYS = (C.OBJECT_ID, C.IMAGE, C.RGB, C.FLUX, C.IVAR, "error", C.MASK, C.WAVELENGTH,
                  *C.LABEL_COLUMNS)
MiB = 1 << 20
DEFAULT_BATCH_ROWS = 256

# ----------------------------------------------------------------------------- option coercion


def as_bool(value: Any) -> bool:
    """``True``/``"true"``/``"1"``/``"yes"`` -> True (options may arrive as CLI strings)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name!r} must be an integer, got {value!r}") from None


def as_float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name!r} must be a number, got {value!r}") from None


def as_list(value: Any) -> list[str] | None:
    """``"a,b"``, ``"[a,b]"`` or ``["a", "b"]`` -> ``["a", "b"]``; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [v.strip().strip("'\"") for v in text.split(",") if v.strip().strip("'\"")]
    return [str(v).strip() for v in value]


def parse_columns(columns: Any) -> dict[str, list[str]]:
    """A column mapping from a TOML table or a ``"a=x;b=y,z"`` string -> ``{canonical: [sources]}``."""
    if columns is None or columns == "":
        return {}
    if isinstance(columns, str):
        pairs = {}
        for item in columns.replace("\n", ";").split(";"):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not val.strip():
                raise ValueError(f"bad column mapping {item!r}: expected canonical=source")
            pairs[key.strip()] = val
        columns = pairs
    out = {}
    for key, val in dict(columns).items():
        if key not in CANONICAL_KEYS:
            raise ValueError(f"unknown canonical field {key!r} in columns; "
                             f"known: {', '.join(CANONICAL_KEYS)}")
        out[key] = as_list(val) or []
    return out


# ----------------------------------------------------------------------------- source files


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

    def read_range(self, lo: int, hi: int, columns: list[str] | None = None,
                   chunk: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Raw record batches covering rows ``[lo, hi)`` of this file, in order."""
        try:
            yield from self._read_range(lo, hi, columns, chunk)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: unreadable {self.kind} data near row {lo} "
                            f"({_one_line(exc)})") from None

    def _read_range(self, lo: int, hi: int, columns: list[str] | None,
                    chunk: int) -> Iterator[pa.RecordBatch]:
        st = self._starts
        groups = [i for i in range(len(st) - 1) if st[i] < hi and st[i + 1] > lo]
        if not groups:
            return
        pos = int(self._starts[groups[0]])
        if self.kind == "parquet":
            batches: Iterable[pa.RecordBatch] = self._pf.iter_batches(
                batch_size=chunk, row_groups=groups, columns=columns, use_threads=True)
        else:
            wanted = set(groups)
            batches = (b.select(columns) if columns else b for i, b in enumerate(self._ipc_batches())
                       if i in wanted)
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


# ----------------------------------------------------------------------------- column decoding


def _has_path(schema: pa.Schema, path: str) -> bool:
    head, _, rest = path.partition(".")
    idx = schema.get_field_index(head)
    if idx < 0:
        return False
    typ = schema.field(idx).type
    for part in rest.split(".") if rest else []:
        typ = typ.storage_type if isinstance(typ, pa.ExtensionType) else typ
        if not pa.types.is_struct(typ) or typ.get_field_index(part) < 0:
            return False
        typ = typ.field(part).type
    return True


def get_column(batch: pa.RecordBatch, path: str, source: str) -> pa.Array:
    """A top-level column or a dotted struct member (parent nulls propagate)."""
    head, _, rest = path.partition(".")
    if head not in batch.schema.names:
        raise DataError(f"{source}: missing column {path!r} (columns: {', '.join(batch.schema.names)})")
    arr = storage(batch.column(head))
    for part in rest.split(".") if rest else []:
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index(part) < 0:
            raise DataError(f"{source}: missing column {path!r} (columns: {', '.join(batch.schema.names)})")
        arr = storage(arr.flatten()[arr.type.get_field_index(part)])
    return arr


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def nested_to_numpy(arr: pa.Array, source: str, name: str, row_offset: int, ids: Any,
                    dtype: Any = np.float32) -> np.ndarray:
    """A (nested) list column of equal-shape rows -> ``[N, *shape]``; ragged or null -> DataError."""
    cur = storage(arr)
    n = len(cur)
    shape: list[int] = []
    while _is_list(cur.type):
        if cur.null_count:
            k = int(np.flatnonzero(cur.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{source}: {row_label(ids, k // max(int(np.prod(shape)), 1), row_offset)}: "
                            f"field {name!r} is null")
        if pa.types.is_fixed_size_list(cur.type):
            length = cur.type.list_size
        else:
            lengths = np.diff(cur.offsets.to_numpy())
            length = int(lengths[0]) if len(lengths) else 0
            bad = np.flatnonzero(lengths != length)
            if bad.size:
                k = int(bad[0]) // max(int(np.prod(shape)), 1)
                first = row_label(ids, 0, row_offset)
                raise DataError(f"{source}: {row_label(ids, k, row_offset)}: field {name!r} is ragged "
                                f"(length {int(lengths[bad[0]])}, {first} has {length})")
        shape.append(length)
        cur = storage(cur.flatten())
    if cur.null_count:
        k = int(np.flatnonzero(cur.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{source}: {row_label(ids, k // max(int(np.prod(shape)), 1), row_offset)}: "
                        f"field {name!r} has null values")
    values = cur.to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape((n, *shape))


def decode_image_bytes(data: bytes, source: str, where: str, name: str) -> np.ndarray:
    """PNG/JPEG (Pillow) -> ``[C,] H, W`` (channels first), or ``.npy`` bytes -> the stored array."""
    try:
        if data[:6] == b"\x93NUMPY":
            return np.load(io.BytesIO(data), allow_pickle=False)
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            if name == C.RGB and im.mode != "RGB":
                im = im.convert("RGB")
            a = np.asarray(im)
        return np.ascontiguousarray(a.transpose(2, 0, 1)) if a.ndim == 3 else a
    except Exception as exc:
        raise DataError(f"{source}: {where}: field {name!r}: cannot decode image bytes "
                        f"({_one_line(exc)})") from None


def _encoded_rows(arr: pa.Array, source: str, name: str, row_offset: int, ids: Any,
                  base_dir: Path | None) -> list[np.ndarray]:
    paths: list[Any] = [None] * len(arr)
    if pa.types.is_struct(arr.type):
        kids = {arr.type.field(i).name: storage(c) for i, c in enumerate(arr.flatten())}
        if "path" in kids:
            paths = kids["path"].to_pylist()
        arr = kids.get("bytes", pa.nulls(len(arr), pa.binary()))
    out = []
    for i, data in enumerate(arr.to_pylist()):
        where = row_label(ids, i, row_offset)
        if data is None and paths[i] and base_dir is not None and (base_dir / paths[i]).is_file():
            data = (base_dir / paths[i]).read_bytes()
        if data is None:
            raise DataError(f"{source}: {where}: field {name!r} is null")
        out.append(decode_image_bytes(data, source, where, name))
    return out


def image_rows(arr: pa.Array, source: str, name: str, row_offset: int, ids: Any,
               base_dir: Path | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Any supported image column -> ``[N, *shape]`` as stored (encoded images: ``H, W[, C]``)."""
    arr = storage(arr)
    if _is_list(arr.type):
        return nested_to_numpy(arr, source, name, row_offset, ids, dtype)
    if pa.types.is_struct(arr.type) or pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        rows = _encoded_rows(arr, source, name, row_offset, ids, base_dir)
        if not rows:
            return np.zeros((0,), dtype)
        for i, r in enumerate(rows):
            if r.shape != rows[0].shape:
                raise DataError(f"{source}: {row_label(ids, i, row_offset)}: field {name!r}: shape "
                                f"{r.shape}, {row_label(ids, 0, row_offset)} has {rows[0].shape}")
        return np.stack(rows).astype(dtype, copy=False)
    raise DataError(f"{source}: field {name!r}: unsupported image column type {arr.type}")


def error_to_ivar(error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ivar = 1/error**2`` where error is finite and > 0 (and ivar finite in float32), else 0.

    Returns ``(ivar float32, bad bool)``; never an infinite ivar.
    """
    err = error.astype(np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ivar = 1.0 / (err * err)
    bad = ~(np.isfinite(err) & (err > 0) & (ivar < np.finfo(np.float32).max))
    ivar[bad] = 0.0
    return ivar.astype(np.float32), bad


def shared_grid(wave: np.ndarray) -> tuple[float, float] | None:
    """``(start, step)`` when every row of ``wave [N, L]`` is the same linear grid (1% of a step)."""
    if wave.ndim != 2 or wave.shape[1] < 2 or not np.isfinite(wave).all():
        return None
    w = wave.astype(np.float64)
    start, step = float(w[0, 0]), float(w[0, -1] - w[0, 0]) / (w.shape[1] - 1)
    if step <= 0:
        return None
    if w.shape[1] == C.DESI_NPIX and abs(start - C.DESI_WAVE_START) < 0.01 * C.DESI_WAVE_STEP \
            and abs(step - C.DESI_WAVE_STEP) < 1e-6:
        start, step = C.DESI_WAVE_START, C.DESI_WAVE_STEP
    grid = start + step * np.arange(w.shape[1])
    return (start, round(step, 9)) if np.allclose(w, grid, rtol=0, atol=0.01 * step) else None


# ----------------------------------------------------------------------------- conversion plan


@dataclass
class Plan:
    """How raw columns become canonical ones (built by each dataset, finished by probing data)."""

    object_id: list[str]
    image: list[str] = field(default_factory=list)
    rgb: str | None = None
    flux: str | None = None
    ivar: str | None = None
    error: str | None = None
    mask: str | None = None
    wavelength: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    image_bands: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    image_layout: str = "chw"
    band_scale: list[float] | None = None
    pixel_scale: float | None = None
    image_unit: str = "unknown"
    flux_unit: str = "unknown"
    wavelength_mode: str = "auto"
    wavelength_start: float | None = None
    wavelength_step: float | None = None
    # filled by probing
    rgb_shape: tuple[int, ...] | None = None
    npix: int | None = None
    #: the shared grid runs red to blue in the files: flux/ivar/mask are reversed on reading
    reverse_spectra: bool = False
    id_type: pa.DataType = field(default_factory=pa.int64)

    def sources(self) -> list[str]:
        """Every mapped source path."""
        srcs = [*self.object_id, *self.image, *self.labels.values()]
        srcs += [s for s in (self.rgb, self.flux, self.ivar, self.error, self.mask, self.wavelength) if s]
        return srcs

    def top_columns(self) -> list[str]:
        return sorted({s.partition(".")[0] for s in self.sources()})

    def to_options(self) -> dict:
        return {"columns": {k: v for k, v in self.__dict__.items()
                            if k in ("object_id", "image", "rgb", "flux", "ivar", "error", "mask",
                                     "wavelength") and v},
                "labels": dict(self.labels), "image_bands": self.image_bands,
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "image_layout": self.image_layout, "band_scale": self.band_scale,
                "pixel_scale": self.pixel_scale, "image_unit": self.image_unit,
                "wavelength": self.wavelength_mode, "wavelength_start": self.wavelength_start,
                "wavelength_step": self.wavelength_step, "reverse_spectra": self.reverse_spectra,
                "id_type": str(self.id_type)}


def _image_array(batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any,
                 base_dir: Path | None) -> np.ndarray:
    if len(plan.image) == 1:
        a = image_rows(get_column(batch, plan.image[0], source), source, C.IMAGE, row_offset, ids, base_dir)
        if a.ndim == 2:  # flat rows
            if plan.image_shape is None:
                raise DataError(f"{source}: field 'image' ({plan.image[0]!r}) is flat; "
                                "give image_shape=B,H,W")
            if a.shape[1] != int(np.prod(plan.image_shape)):
                raise DataError(f"{source}: field 'image' ({plan.image[0]!r}): {a.shape[1]} values per row, "
                                f"image_shape {plan.image_shape} needs {int(np.prod(plan.image_shape))}")
            return a.reshape((len(a), *plan.image_shape))
        if a.ndim == 3:
            return a[:, None]
        if a.ndim == 4 and not _encoded_png(batch, plan.image[0]):
            if plan.image_layout == "auto":
                plan.image_layout = image_layout(a.shape[1:], plan.image_shape, source, plan.image[0])
            if plan.image_layout == "hwc":
                return np.ascontiguousarray(a.transpose(0, 3, 1, 2))
        return a
    bands = []
    for col in plan.image:
        a = image_rows(get_column(batch, col, source), source, col, row_offset, ids, base_dir)
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 3:
            raise DataError(f"{source}: field {col!r}: expected one 2-D band per row, "
                            f"got shape {a.shape[1:]}")
        if bands and a.shape != bands[0].shape:
            raise DataError(f"{source}: field {col!r}: band shape {a.shape[1:]} differs from "
                            f"{plan.image[0]!r} {bands[0].shape[1:]}")
        bands.append(a)
    return np.stack(bands, axis=1)


def image_layout(shape: tuple[int, ...], declared: tuple[int, ...] | None, source: str, column: str) -> str:
    """``"chw"`` or ``"hwc"`` for 3-D stamps of ``shape`` (one row), when only one reading is plausible.

    A declared ``image_shape`` (B, H, W) decides when it matches one reading. Otherwise a reading is
    plausible when its two spatial axes are equal (square stamps) or both longer than its band axis;
    when both readings or neither are, a one-line DataError asks for ``image_layout=chw`` or ``hwc``.
    """
    a, b, c = shape
    if declared is not None and len(declared) == 3:
        if tuple(declared) == (a, b, c):
            return "chw"
        if tuple(declared) == (c, a, b):
            return "hwc"
    chw = b == c or (a < b and a < c)
    hwc = a == b or (c < a and c < b)
    if chw != hwc:
        return "chw" if chw else "hwc"
    raise DataError(f"{source}: field 'image' ({column!r}): stamps of shape {shape} could be bands-first or "
                    "bands-last; give image_layout=chw or image_layout=hwc")


def _encoded_png(batch: pa.RecordBatch, col: str) -> bool:
    """True for a column of PNG/JPEG bytes (decoded channels-first already)."""
    arr = storage(get_column(batch, col, ""))
    if _is_list(arr.type) or not len(arr):
        return False
    if pa.types.is_struct(arr.type):
        arr = storage(arr.flatten()[arr.type.get_field_index("bytes")])
    first = next((v for v in arr.to_pylist()[:1] if v), b"")
    return not first.startswith(b"\x93NUMPY")


def _rgb_array(batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any,
               base_dir: Path | None) -> np.ndarray:
    """The rgb column as ``[N, 3, H, W]`` uint8 (``H x W x 3`` arrays are transposed)."""
    rgb = image_rows(get_column(batch, plan.rgb, source), source, C.RGB, row_offset, ids, base_dir, np.uint8)
    if rgb.ndim == 4 and rgb.shape[-1] in (3, 4) and rgb.shape[1] not in (3, 4):
        rgb = rgb[..., :3].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(rgb)


def _object_ids(batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int = 0,
                repairs: Repairs | None = None) -> pa.Array:
    """The id column(s) as the data set's canonical id type (see :func:`fmb.data.canonical.canonical_ids`)."""
    cols = [C.canonical_ids(get_column(batch, c, source), plan.id_type, source, c, row_offset, repairs)
            for c in plan.object_id]
    return pc.coalesce(*cols) if len(cols) > 1 else cols[0]


def _path_type(schema: pa.Schema, path: str) -> pa.DataType | None:
    """The type of a top-level column or dotted struct member, or None when absent."""
    if not _has_path(schema, path):
        return None
    head, _, rest = path.partition(".")
    typ = schema.field(head).type
    for part in rest.split(".") if rest else []:
        typ = typ.storage_type if isinstance(typ, pa.ExtensionType) else typ
        typ = typ.field(part).type
    return typ


def dataset_id_type(files: list[SourceFile], plan: Plan) -> pa.DataType:
    """One canonical id type for every file of a data set (int64, or string when any file has text ids)."""
    types = []
    for f in files:
        for col in plan.object_id:
            t = _path_type(f.schema, col)
            if t is not None:
                types.append(t)
                C.id_type([t], f"{f.path.name}: field {col!r}")
    return C.id_type(types, "object_id") if types else pa.int64()


def _anomaly_class(arr: pa.Array) -> pa.Array:
    arr = arr.cast(pa.string())
    lower = pc.utf8_lower(pc.fill_null(arr, ""))
    normal = pc.is_in(lower, value_set=pa.array(["", "none", "normal"]))
    return pc.if_else(normal, pa.scalar(C.NORMAL_CLASS), arr)


def _spectrum(batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any,
              repairs: Repairs) -> dict[str, np.ndarray]:
    flux_arr = get_column(batch, plan.flux, source)
    n = len(flux_arr)
    valid = ~flux_arr.is_null().to_numpy(zero_copy_only=False)
    npix = plan.npix or 0
    out = {C.FLUX: np.zeros((n, npix), np.float32), C.IVAR: np.zeros((n, npix), np.float32),
           C.MASK: np.ones((n, npix), bool)}
    if plan.wavelength and plan.wavelength_mode == "column":
        out[C.WAVELENGTH] = np.zeros((n, npix), np.float32)
    if not valid.all():
        repairs.add("spectrum_missing", int((~valid).sum()))
    if not valid.any():
        return out
    keep = pa.array(valid)
    sub_ids = np.asarray(ids)[valid] if ids is not None else None
    rows = np.flatnonzero(valid)

    def mat(path: str, name: str, dtype: Any = np.float32) -> np.ndarray:
        a = get_column(batch, path, source).filter(keep)
        m = nested_to_numpy(a, source, name, row_offset, sub_ids, dtype)
        if m.ndim != 2 or m.shape[1] != npix:
            raise DataError(f"{source}: field {name!r}: length {m.shape[1:]} differs from the flux "
                            f"length {npix}")
        return m

    flux = mat(plan.flux, C.FLUX)
    if plan.ivar:
        ivar = mat(plan.ivar, C.IVAR)
        mask = ivar == 0
    else:
        ivar, mask = error_to_ivar(mat(plan.error, "error"))
        repairs.add("spectrum_invalid_error_masked", int(mask.sum()))
    if plan.mask:
        mask = mask | (mat(plan.mask, C.MASK, np.int64) != 0)
    if plan.reverse_spectra:
        flux, ivar, mask = flux[:, ::-1], ivar[:, ::-1], mask[:, ::-1]
        repairs.add("spectrum_grid_reversed", len(rows))
    out[C.FLUX][rows], out[C.IVAR][rows], out[C.MASK][rows] = flux, ivar, mask
    if plan.wavelength:
        wave = mat(plan.wavelength, C.WAVELENGTH, np.float64)
        if plan.reverse_spectra:
            wave = wave[:, ::-1]
        if plan.wavelength_mode == "column":
            out[C.WAVELENGTH][rows] = wave
        else:
            _check_grid(wave, plan, source, row_offset, sub_ids)
    return out


def _check_grid(wave: np.ndarray, plan: Plan, source: str, row_offset: int, ids: Any) -> None:
    grid = plan.wavelength_start + plan.wavelength_step * np.arange(wave.shape[1])
    off = np.abs(wave - grid).max(axis=1) > 0.01 * plan.wavelength_step
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"{source}: {row_label(ids, i, row_offset)}: field 'wavelength' is not the shared "
                        f"grid {plan.wavelength_start}+{plan.wavelength_step}*i; open with wavelength=column")


def canonical_schema(plan: Plan, has_image: bool) -> pa.Schema:
    fields = [pa.field(C.OBJECT_ID, plan.id_type)]
    if has_image:
        b, h, w = plan.image_shape
        bands = plan.image_bands or [f"band{i}" for i in range(b)]
        scale = plan.pixel_scale if plan.pixel_scale is not None else float("nan")
        fields.append(C.image_field(bands, h, w, scale, unit=plan.image_unit))
    if plan.rgb_shape:
        fields.append(C.rgb_field(plan.rgb_shape[1], plan.rgb_shape[2]))
    if plan.flux:
        per_row = plan.wavelength_mode == "column"
        fields += C.spectrum_fields(plan.npix, None if per_row else plan.wavelength_start,
                                    None if per_row else plan.wavelength_step, unit=plan.flux_unit)
        if per_row:
            fields.append(pa.field(C.WAVELENGTH, pa.list_(pa.float32(), plan.npix)))
    label_types = {f.name: f.type for f in C.label_fields()}
    fields += [pa.field(k, label_types[k]) for k in C.LABEL_COLUMNS if k in plan.labels]
    return pa.schema(fields)


def convert_batch(batch: pa.RecordBatch, plan: Plan, schema: pa.Schema, source: str, row_offset: int,
                  repairs: Repairs, base_dir: Path | None = None) -> pa.RecordBatch:
    """One raw batch -> a canonical batch of ``schema`` (not yet validated)."""
    ids_arr = _object_ids(batch, plan, source, row_offset, repairs)
    ids = ids_arr.to_numpy(zero_copy_only=False)
    cols: dict[str, pa.Array] = {C.OBJECT_ID: ids_arr}
    if C.IMAGE in schema.names:
        img = _image_array(batch, plan, source, row_offset, ids, base_dir)
        if img.shape[1:] != tuple(plan.image_shape):
            raise DataError(f"{source}: {row_label(ids, 0, row_offset)}: field 'image': shape "
                            f"{img.shape[1:]}, expected {tuple(plan.image_shape)}")
        if plan.band_scale:
            img = img * np.asarray(plan.band_scale, np.float32)[None, :, None, None]
        cols[C.IMAGE] = _fixed(img.astype(np.float32, copy=False), pa.float32())
    if C.RGB in schema.names:
        rgb = _rgb_array(batch, plan, source, row_offset, ids, base_dir)
        if rgb.shape[1:] != tuple(plan.rgb_shape):
            raise DataError(f"{source}: {row_label(ids, 0, row_offset)}: field 'rgb': shape {rgb.shape[1:]}, "
                            f"expected {tuple(plan.rgb_shape)}")
        cols[C.RGB] = _fixed(np.ascontiguousarray(rgb), pa.uint8())
    if plan.flux:
        spec = _spectrum(batch, plan, source, row_offset, ids, repairs)
        for k, v in spec.items():
            cols[k] = _fixed(v, pa.bool_() if k == C.MASK else pa.float32())
    for k, src in plan.labels.items():
        arr = get_column(batch, src, source)
        cols[k] = _anomaly_class(arr) if k == C.ANOMALY_CLASS else arr.cast(schema.field(k).type)
    return pa.RecordBatch.from_arrays([cols[f.name] for f in schema], schema=schema)


def _fixed(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    size = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), typ), size)


# ----------------------------------------------------------------------------- the dataset


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


class FileDataset(Dataset):
    """Canonical batches converted from Parquet/Arrow files according to a :class:`Plan`."""

    name = "parquet"

    def __init__(self, files: list[SourceFile], plan: Plan, batch_rows: int = DEFAULT_BATCH_ROWS,
                 kind: str = "files", options: dict | None = None) -> None:
        super().__init__()
        if not files:
            raise DataError("no data files")
        self._files, self._plan, self._batch_rows, self._kind = files, plan, max(int(batch_rows), 1), kind
        self._options = dict(options or {})
        self._starts = np.cumsum([0] + [f.num_rows for f in files])
        self._counted: set[tuple[int, int]] = set()
        for f in files:
            missing = [s for s in plan.sources() if not _has_path(f.schema, s)]
            if missing:
                raise DataError(f"{f.path}: missing column {missing[0]!r} "
                                f"(columns: {', '.join(f.schema.names)})")
        if len(self) == 0:
            raise DataError(f"{files[0].path}: empty (no rows)")
        self._schema = self._probe()

    # -- schema from the first block
    def _probe(self) -> pa.Schema:
        plan = self._plan
        f = next(f for f in self._files if f.num_rows)
        raw = next(iter(rechunk(f.read_range(0, min(f.num_rows, 16), plan.top_columns()), 16)))
        src = f.name
        plan.id_type = dataset_id_type(self._files, plan)
        ids = _object_ids(raw, plan, src).to_numpy(zero_copy_only=False)
        if plan.image:
            img = _image_array(raw, plan, src, 0, ids, f.path.parent)
            plan.image_shape = tuple(int(s) for s in img.shape[1:])
            if plan.image_bands and len(plan.image_bands) != plan.image_shape[0]:
                raise DataError(f"{src}: {len(plan.image_bands)} image_bands for {plan.image_shape[0]} bands")
            if plan.band_scale and len(plan.band_scale) != plan.image_shape[0]:
                raise DataError(f"{src}: {len(plan.band_scale)} band scales for {plan.image_shape[0]} bands")
        if plan.rgb:
            rgb = _rgb_array(raw, plan, src, 0, ids, f.path.parent)
            if rgb.ndim != 4 or rgb.shape[1] != 3:
                raise DataError(f"{src}: field 'rgb' ({plan.rgb!r}): expected 3-channel images, "
                                f"got {rgb.shape[1:]}")
            plan.rgb_shape = tuple(int(s) for s in rgb.shape[1:])
        if plan.flux:
            self._probe_spectrum()
        return canonical_schema(plan, bool(plan.image))

    def _first_spectra(self, rows: int = 16) -> tuple[pa.RecordBatch, str, int]:
        """Up to ``rows`` raw rows whose flux is not null, the first ones in the data set, with their
        file name and the file row of the first; a DataError when every flux is null."""
        plan = self._plan
        cols = sorted({s.partition(".")[0] for s in (*plan.object_id, plan.flux, plan.wavelength) if s})
        for f in self._files:
            pos, step = 0, rows
            while pos < f.num_rows:  # growing windows: read no further than the first spectra
                hi = min(pos + step, f.num_rows)
                raw = next(iter(rechunk(f.read_range(pos, hi, cols, hi - pos), hi - pos)))
                present = ~get_column(raw, plan.flux, f.name).is_null().to_numpy(zero_copy_only=False)
                if present.any():
                    keep = np.flatnonzero(present)[:rows]
                    return raw.take(pa.array(keep)), f.name, pos + int(keep[0])
                pos, step = hi, step * 4
        raise DataError(f"{self._files[0].name}: field 'flux' ({plan.flux!r}) is null in every row; "
                        "map no flux column to read images only")

    def _probe_spectrum(self) -> None:
        """Spectrum length and wavelength grid from the first non-null spectra (wherever they are)."""
        plan = self._plan
        if not (plan.ivar or plan.error):
            raise DataError(f"{self._files[0].name}: spectrum 'flux' ({plan.flux!r}) needs an 'ivar' or "
                            "'error' column")
        raw, src, row0 = self._first_spectra()
        ids = _object_ids(raw, plan, src).to_numpy(zero_copy_only=False)
        plan.npix = nested_to_numpy(get_column(raw, plan.flux, src), src, C.FLUX, row0, ids).shape[1]
        if plan.wavelength_start is not None and plan.wavelength_step is not None:
            per_row = plan.wavelength and plan.wavelength_mode == "column"
            plan.wavelength_mode = "column" if per_row else "grid"
            if not per_row:
                self._orient_grid(src)
            return
        if plan.wavelength and plan.wavelength_mode != "column":
            w = get_column(raw, plan.wavelength, src)
            w = w.filter(pa.array(~w.is_null().to_numpy(zero_copy_only=False)))
            wave = nested_to_numpy(w, src, C.WAVELENGTH, row0, None, np.float64) if len(w) else None
            grid = shared_grid(wave) if wave is not None else None
            if grid is None and wave is not None and (rev := shared_grid(wave[:, ::-1])):
                plan.reverse_spectra, grid = True, rev
            if grid:
                plan.wavelength_start, plan.wavelength_step = grid
                plan.wavelength_mode = "grid"
                return
            plan.wavelength_mode = "column"
            return
        if plan.wavelength:
            return
        if plan.npix == C.DESI_NPIX:
            plan.wavelength_start, plan.wavelength_step = C.DESI_WAVE_START, C.DESI_WAVE_STEP
            plan.wavelength_mode = "grid"
            return
        raise DataError(f"{src}: spectra of length {plan.npix} need a wavelength column or "
                        "wavelength_start and wavelength_step")

    def _orient_grid(self, src: str) -> None:
        """A shared grid given as start/step with a negative step runs red to blue: keep the ascending
        grid (start = the bluest pixel) and reverse every spectrum on reading (counted)."""
        plan = self._plan
        if not plan.wavelength_step or plan.wavelength_step != plan.wavelength_step:
            raise DataError(f"{src}: wavelength_step must be non-zero, got {plan.wavelength_step}")
        if plan.wavelength_step < 0:
            plan.wavelength_start = plan.wavelength_start + plan.wavelength_step * (plan.npix - 1)
            plan.wavelength_step = -plan.wavelength_step
            plan.reverse_spectra = True

    # -- Dataset interface
    #: options that do not change the data: left out of the fingerprint (so a moved copy matches)
    NOT_FINGERPRINTED = ("path", "files", "batch_rows", "cache_dir")

    @property
    def fingerprint(self) -> str:
        """Hash of the source kind, the shaping options and each file's full content, in row order.

        Any changed byte of any file changes it (the file digests are memoised by path, size,
        mtime and inode, so asking again is cheap); moving, renaming or copying the files does not.
        """
        opts = {k: v for k, v in self.options().items() if k not in self.NOT_FINGERPRINTED}
        return value_hash({"kind": self._kind, "name": self.name, "options": opts,
                           "files": [f.content_hash() for f in self._files],
                           "hash": ALGORITHM})

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def options(self) -> dict:
        opts = dict(self._options)
        opts.setdefault("plan", self._plan.to_options())
        opts["files"] = [str(f.path) for f in self._files]
        return opts

    def iter_batches(self, batch_size: int = 256, start: int = 0,
                     stop: int | None = None) -> Iterator[pa.RecordBatch]:
        """Validated canonical batches of rows ``[start, stop)``; the first call checks that every id of the
        whole data set is unique (once per data set, :func:`fmb.data.validate.check_unique_ids`)."""
        check_unique_ids(self)
        n = len(self)
        stop = n if stop is None else min(int(stop), n)
        start = max(int(start), 0)
        if start >= stop:
            return
        yield from rechunk(self._pieces(start, stop), max(int(batch_size), 1))

    def locate(self, row: int) -> tuple[str, int]:
        """``(file name, row in that file)`` of data set row ``row``."""
        fi = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self._files[fi].name, int(row - self._starts[fi])

    def read_columns(self, columns: list[str]) -> pa.Table:
        """Ids and labels for every object, reading only their source columns (no images/spectra).

        Duplicate ids are not checked here (see :func:`fmb.data.validate.check_unique_ids`).
        """
        light = {C.OBJECT_ID, *C.LABEL_COLUMNS}
        if not set(columns) <= light:
            return super().read_columns(columns)
        plan = dataclasses.replace(self._plan, image=[], rgb=None, flux=None, ivar=None, error=None,
                                   mask=None, wavelength=None, rgb_shape=None,
                                   labels={k: v for k, v in self._plan.labels.items() if k in columns})
        schema = canonical_schema(plan, has_image=False)
        out = []
        for f in self._files:
            pos = 0
            for raw in f.read_range(0, f.num_rows, plan.top_columns(), 65536):
                canon = convert_batch(raw, plan, schema, f.name, pos, Repairs(), f.path.parent)
                out.append(validate_batch(canon, f.name, pos, Repairs(), duplicates=False))
                pos += raw.num_rows
        table = pa.Table.from_batches(out, schema=schema)
        return table.select([c for c in columns if c in schema.names])

    def _pieces(self, start: int, stop: int) -> Iterator[pa.RecordBatch]:
        """Validated canonical pieces for ``[start, stop)``, read in blocks aligned to batch_rows.

        Aligned blocks make the repair counts independent of how the rows are requested:
        each block's repairs are counted once per dataset object. A block that fails validation
        only fails the request when a requested row is at fault (so ``fmb show`` of one object is
        not refused for a bad neighbour); the block's repairs are then not counted.
        """
        r = self._batch_rows
        for fi, f in enumerate(self._files):
            g0 = int(self._starts[fi])
            lo, hi = max(start - g0, 0), min(stop - g0, f.num_rows)
            if lo >= hi:
                continue
            b_lo, b_hi = (lo // r) * r, min(-(-hi // r) * r, f.num_rows)
            raw_blocks = rechunk(f.read_range(b_lo, b_hi, self._plan.top_columns(), r), r)
            for k, raw in enumerate(raw_blocks):
                off = b_lo + k * r
                rep = Repairs()
                a, z = max(lo - off, 0), min(hi - off, raw.num_rows)
                try:
                    canon = convert_batch(raw, self._plan, self._schema, f.name, off, rep, f.path.parent)
                    canon = validate_batch(canon, f.name, off, rep)
                except DataError:
                    if (a == 0 and z == raw.num_rows) or z <= a:
                        raise
                    part = raw.slice(a, z - a)
                    canon = convert_batch(part, self._plan, self._schema, f.name, off + a, Repairs(),
                                          f.path.parent)
                    yield validate_batch(canon, f.name, off + a, Repairs())
                    continue
                if (fi, off) not in self._counted:
                    self._counted.add((fi, off))
                    self.repairs.merge(rep)
                if z > a:
                    yield canon.slice(a, z - a)


# ----------------------------------------------------------------------------- open_dataset


def default_columns(schema: pa.Schema) -> dict[str, list[str]]:
    """Canonical names present in a file map onto themselves."""
    return {k: [k] for k in CANONICAL_KEYS if k in schema.names}


def open_dataset(path: str | os.PathLike | None = None, columns: Any = None, image_bands: Any = None,
                 image_shape: Any = None, pixel_scale: Any = None, wavelength_start: Any = None,
                 wavelength_step: Any = None, image_unit: str | None = None, flux_unit: str | None = None,
                 image_layout: str = "auto", wavelength: str = "auto",
                 batch_rows: Any = DEFAULT_BATCH_ROWS) -> FileDataset:
    """Open Parquet/Arrow file(s) (a file, a folder or a glob) with a column mapping.

    Options may be CLI strings: ``columns="object_id=id;flux=spec_flux;image=cutout"``,
    ``image_shape="4,64,64"``, ``image_bands="g,r,i,z"``.
    """
    if path is None or str(path) == "":
        raise DataError("dataset 'parquet' needs path=<file, folder or glob>")
    files = [SourceFile(p) for p in resolve_files(path)]
    mapping = parse_columns(columns) or default_columns(files[0].schema)
    if C.OBJECT_ID not in mapping:
        names = ", ".join(files[0].schema.names)
        raise DataError(f"{files[0].path}: no 'object_id' mapping (columns: {names}); "
                        "pass columns=\"object_id=<column>;...\"")
    if wavelength not in ("auto", "column"):
        raise ValueError(f"option 'wavelength' must be 'auto' or 'column', got {wavelength!r}")
    if image_layout not in ("auto", "chw", "hwc"):
        raise ValueError(f"option 'image_layout' must be 'auto', 'chw' or 'hwc', got {image_layout!r}")
    one = {k: (v[0] if v else None) for k, v in mapping.items()}
    shape = tuple(int(s) for s in as_list(image_shape)) if image_shape is not None else None
    image_md = _image_metadata(files[0].schema, (mapping.get(C.IMAGE) or [None])[0])
    plan = Plan(object_id=mapping[C.OBJECT_ID], image=mapping.get(C.IMAGE, []), rgb=one.get(C.RGB),
                flux=one.get(C.FLUX), ivar=one.get(C.IVAR), error=one.get("error"), mask=one.get(C.MASK),
                wavelength=one.get(C.WAVELENGTH),
                labels={k: one[k] for k in C.LABEL_COLUMNS if one.get(k)},
                image_bands=as_list(image_bands) or image_md.get("bands"),
                image_shape=shape or image_md.get("shape"), image_layout=image_layout,
                pixel_scale=as_float(pixel_scale, "pixel_scale") if pixel_scale is not None
                else image_md.get("pixel_scale"),
                image_unit=image_unit or image_md.get("unit") or "unknown",
                flux_unit=flux_unit or _flux_unit(files[0].schema, one.get(C.FLUX)) or "unknown",
                wavelength_mode=wavelength,
                wavelength_start=as_float(wavelength_start, "wavelength_start"),
                wavelength_step=as_float(wavelength_step, "wavelength_step"))
    if plan.flux and plan.wavelength_start is None and not plan.wavelength:
        grid = _grid_metadata(files[0].schema, plan.flux)
        if grid:
            plan.wavelength_start, plan.wavelength_step = grid
    opts = {"path": str(path), "columns": {k: ",".join(v) for k, v in mapping.items()},
            "batch_rows": as_int(batch_rows, "batch_rows"), "wavelength": wavelength,
            "image_layout": image_layout}
    return FileDataset(files, plan, as_int(batch_rows, "batch_rows"), kind="files", options=opts)


def _image_metadata(schema: pa.Schema, col: str | None) -> dict:
    """Shape/bands/pixel_scale/unit from a canonical-style ``image`` field's metadata."""
    if not col or col not in schema.names:
        return {}
    fld = schema.field(col)
    out: dict[str, Any] = {}
    if C.field_meta(fld, "shape"):
        out["shape"] = tuple(int(s) for s in C.field_meta(fld, "shape").split(","))
    if C.field_meta(fld, "bands"):
        out["bands"] = C.field_meta(fld, "bands").split(",")
    ps = C.field_meta(fld, "pixel_scale")
    if ps:
        out["pixel_scale"] = as_float(ps, "pixel_scale")
    if C.field_meta(fld, "unit"):
        out["unit"] = C.field_meta(fld, "unit")
    return out


def _flux_unit(schema: pa.Schema, col: str | None) -> str | None:
    return C.field_meta(schema.field(col), "unit") if col and col in schema.names else None


def _grid_metadata(schema: pa.Schema, col: str) -> tuple[float, float] | None:
    if col not in schema.names:
        return None
    fld = schema.field(col)
    start, step = C.field_meta(fld, "wavelength_start"), C.field_meta(fld, "wavelength_step")
    return (float(start), float(step)) if start is not None and step is not None else None
