"""The canonical data model: how objects travel between datasets, models and detectors.

Every dataset yields :class:`pyarrow.RecordBatch` objects whose columns use the names below.
Array-valued fields are stored flat as ``fixed_size_list`` columns; their shape and meaning
live in the Arrow *field metadata* (all values are UTF-8 strings):

``image``  float32, flat ``[bands * H * W]``; metadata ``shape="4,64,64"``,
           ``bands="VIS,Y,J,H"``, ``pixel_scale="0.1"`` (arcsec/px), ``unit="nanomaggies"``.
``rgb``    uint8, flat ``[3 * H * W]``; metadata ``shape="3,64,64"``.
``flux``, ``ivar``  float32 ``[L]``; ``mask`` bool ``[L]`` (True = bad pixel).
           The wavelength grid (Angstrom, vacuum, observed frame) is either a ``wavelength``
           column of the same length, or, for a grid shared by every row, the field metadata
           of ``flux``: ``wavelength_start``, ``wavelength_step``, ``unit``.
Truth (optional): ``is_anomaly`` bool, ``anomaly_class`` string (``"normal"`` for normal
objects), ``redshift``, ``log_mstar``, ``log_sfr`` float32. Coordinates (optional): ``ra``, ``dec``
float64, ICRS degrees (``0 <= ra < 360``, ``-90 <= dec <= 90``; null = unknown), carried like the truth
columns to the embedding cache, ``scores.parquet``, the report and ``fmb export``. A null ``is_anomaly`` means
*unlabelled* (never inspected): such objects are left out of every label metric. An object
flagged anomalous without a class has class ``"unknown"`` (see :func:`resolve_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmb.errors import DataError as DataError  # re-exported for dataset authors

OBJECT_ID = "object_id"
IMAGE = "image"
RGB = "rgb"
FLUX = "flux"
IVAR = "ivar"
MASK = "mask"
WAVELENGTH = "wavelength"
IS_ANOMALY = "is_anomaly"
ANOMALY_CLASS = "anomaly_class"
NORMAL_CLASS = "normal"
UNKNOWN_CLASS = "unknown"
#: the class shown for objects whose ``is_anomaly`` is null (left out of every metric and figure of truth)
UNLABELLED_CLASS = "unlabelled"
PHYSICAL = ("redshift", "log_mstar", "log_sfr")
RA = "ra"
DEC = "dec"
COORDINATES = (RA, DEC)
#: Per-object scalar columns carried beside the scores (truth, physical parameters and sky coordinates).
LABEL_COLUMNS = (IS_ANOMALY, ANOMALY_CLASS, *PHYSICAL, *COORDINATES)

#: The DESI coadd grid: 3600 + 0.8 i Angstrom, i < 7781.
DESI_WAVE_START = 3600.0
DESI_WAVE_STEP = 0.8
DESI_NPIX = 7781

#: Modalities a model can be asked for, and the canonical columns each one needs.
MODALITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "image": (IMAGE,),
    "spectrum": (FLUX, IVAR, MASK),
}


def _meta(**kw: object) -> dict[bytes, bytes]:
    return {k.encode(): str(v).encode() for k, v in kw.items()}


def image_field(bands: list[str], height: int, width: int, pixel_scale: float, unit: str = "nanomaggies") -> pa.Field:
    """The ``image`` field for ``bands`` x ``height`` x ``width`` stamps."""
    n = len(bands) * height * width
    return pa.field(
        IMAGE,
        pa.list_(pa.float32(), n),
        metadata=_meta(
            shape=f"{len(bands)},{height},{width}", bands=",".join(bands), pixel_scale=pixel_scale, unit=unit
        ),
    )


def rgb_field(height: int, width: int) -> pa.Field:
    """The optional ``rgb`` composite field (uint8, 3 x height x width)."""
    return pa.field(RGB, pa.list_(pa.uint8(), 3 * height * width), metadata=_meta(shape=f"3,{height},{width}"))


def spectrum_fields(
    npix: int = DESI_NPIX,
    start: float | None = DESI_WAVE_START,
    step: float | None = DESI_WAVE_STEP,
    unit: str = "1e-17 erg/s/cm2/Angstrom",
) -> list[pa.Field]:
    """``flux``, ``ivar`` and ``mask`` fields; a shared linear grid goes in ``flux``'s metadata.

    Pass ``start=None`` when the dataset carries a per-row ``wavelength`` column instead.
    """
    meta = {"unit": unit}
    if start is not None and step is not None:
        meta.update(wavelength_start=start, wavelength_step=step)
    return [
        pa.field(FLUX, pa.list_(pa.float32(), npix), metadata=_meta(**meta)),
        pa.field(IVAR, pa.list_(pa.float32(), npix)),
        pa.field(MASK, pa.list_(pa.bool_(), npix)),
    ]


def truth_fields() -> list[pa.Field]:
    """Optional truth fields: is_anomaly, anomaly_class and the physical parameters."""
    return [
        pa.field(IS_ANOMALY, pa.bool_()),
        pa.field(ANOMALY_CLASS, pa.string()),
        *(pa.field(p, pa.float32()) for p in PHYSICAL),
    ]


def coordinate_fields() -> list[pa.Field]:
    """Optional sky coordinates, degrees (float64: float32 would round a coordinate by up to ~0.1")."""
    return [pa.field(c, pa.float64(), metadata=_meta(unit="deg", frame="ICRS")) for c in COORDINATES]


def label_fields() -> list[pa.Field]:
    """Every optional per-object scalar field (:data:`LABEL_COLUMNS`): truth, then sky coordinates."""
    return [*truth_fields(), *coordinate_fields()]


def storage(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A plain array (chunks combined, extension types unwrapped)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    return arr


def field_shape(fld: pa.Field) -> tuple[int, ...]:
    """The array shape recorded in a field's metadata (``shape`` key), else its flat length."""
    md = fld.metadata or {}
    if b"shape" in md:
        return tuple(int(s) for s in md[b"shape"].decode().split(","))
    if pa.types.is_fixed_size_list(fld.type):
        return (fld.type.list_size,)
    raise DataError(f"field {fld.name!r} has no fixed shape")


def field_meta(fld: pa.Field, key: str, default: str | None = None) -> str | None:
    """One metadata value of a field, decoded."""
    md = fld.metadata or {}
    v = md.get(key.encode())
    return v.decode() if v is not None else default


def column_array(batch: pa.RecordBatch | pa.Table, name: str, dtype: type = np.float32) -> np.ndarray:
    """A fixed-size-list column as a numpy array ``[N, *shape]`` (zero-copy where possible)."""
    schema = batch.schema
    idx = schema.get_field_index(name)
    if idx < 0:
        raise DataError(f"missing column {name!r}")
    fld = schema.field(idx)
    col = batch.column(idx)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    shape = field_shape(fld)
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"row {row}: field {name!r} is null")
    values = col.flatten().to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape((len(col), *shape))


def image_bands(schema: pa.Schema) -> list[str]:
    """Band names of the ``image`` field."""
    return (field_meta(schema.field(IMAGE), "bands", "") or "").split(",")


def wavelength(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """The wavelength grid: ``[L]`` for a shared grid, ``[N, L]`` for a per-row column."""
    schema = batch.schema
    if WAVELENGTH in schema.names:
        return column_array(batch, WAVELENGTH, np.float64)
    fld = schema.field(FLUX)
    start, step = field_meta(fld, "wavelength_start"), field_meta(fld, "wavelength_step")
    if start is None or step is None:
        raise DataError("spectrum has neither a 'wavelength' column nor a grid in the 'flux' metadata")
    return float(start) + float(step) * np.arange(field_shape(fld)[0])


def modalities_of(schema: pa.Schema) -> list[str]:
    """Which modalities a schema carries."""
    return [m for m, cols in MODALITY_COLUMNS.items() if all(c in schema.names for c in cols)]


def has_labels(schema: pa.Schema) -> bool:
    """True when the schema holds anomaly labels."""
    return IS_ANOMALY in schema.names


@dataclass
class Repairs:
    """Documented repairs applied to input data, counted per kind (reported in results.json)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + int(n)

    def merge(self, other: Repairs) -> None:
        for k, v in other.counts.items():
            self.add(k, v)


def resolve_labels(
    is_anomaly: pa.Array | pa.ChunkedArray | np.ndarray,
    anomaly_class: pa.Array | pa.ChunkedArray | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The truth of ``N`` objects as ``(labelled [N] bool, is_anomaly [N] bool, class [N] object | None)``.

    A null (or NaN) ``is_anomaly`` is unlabelled: ``labelled`` is False there, ``is_anomaly`` False and
    the class None. A labelled normal object has class :data:`NORMAL_CLASS`; an anomalous one keeps its
    class, or gets :data:`UNKNOWN_CLASS` when its class is null, empty, "none" or "normal" (a flagged
    object is never counted as normal). ``class`` is None when ``anomaly_class`` is None.
    """
    raw = (
        is_anomaly.to_pylist()
        if isinstance(is_anomaly, pa.Array | pa.ChunkedArray)
        else list(np.asarray(is_anomaly, dtype=object))
    )
    labelled = np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in raw], bool)
    y = np.array([bool(v) if ok else False for v, ok in zip(raw, labelled)], bool)
    if anomaly_class is None:
        return labelled, y, None
    names = (
        anomaly_class.to_pylist()
        if isinstance(anomaly_class, pa.Array | pa.ChunkedArray)
        else list(np.asarray(anomaly_class, dtype=object))
    )
    cls = np.empty(len(raw), dtype=object)
    for i, (ok, anom, c) in enumerate(zip(labelled, y, names)):
        if not ok:
            cls[i] = None
        elif not anom:
            cls[i] = NORMAL_CLASS
        else:
            text = "" if c is None else str(c).strip()
            cls[i] = UNKNOWN_CLASS if text.lower() in ("", "none", NORMAL_CLASS) else text
    return labelled, y, cls


# ----------------------------------------------------------------------------- object ids

#: Largest integer magnitude a float64 holds exactly together with its neighbours (2**53 - 1, IEEE 754
#: binary64 has a 53-bit significand): a float id above it may be a rounded copy of the real id.
FLOAT64_EXACT_INT = 2**53 - 1
INT64_MAX = 2**63 - 1
#: the repair counted when integral float ids become int64
ID_FLOAT_REPAIR = "object_id_float_to_int64"


def _value_type(t: pa.DataType) -> pa.DataType:
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_text(t: pa.DataType) -> bool:
    t = _value_type(t)
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def id_type(types: list[pa.DataType], where: str) -> pa.DataType:
    """The one canonical ``object_id`` type of a data set whose id columns have ``types``.

    int64 when every column is integer or floating point (floats must hold integral ids, checked
    per row by :func:`canonical_ids`); string when any column holds text (integer ids are then
    written in decimal, so int 12 and "12" are the same object). Other types raise a one-line
    DataError naming ``where`` (file and field).
    """
    for t in types:
        v = _value_type(t)
        if not (pa.types.is_integer(v) or pa.types.is_floating(v) or _is_text(v)):
            raise DataError(f"{where}: object_id must be integer or string, got {t}")
    return pa.string() if any(_is_text(t) for t in types) else pa.int64()


def canonical_ids(
    arr: pa.Array | pa.ChunkedArray,
    target: pa.DataType,
    source: str,
    field_name: str = OBJECT_ID,
    row_offset: int = 0,
    repairs: Repairs | None = None,
) -> pa.Array:
    """Ids of one column as the data set's canonical type ``target`` (int64 or string).

    * integers -> int64; a uint64 id above 2**63 - 1 is a DataError (store such ids as strings);
    * floats whose values are all integral and within +-(2**53 - 1) (exact in float64) -> int64,
      counted as ``object_id_float_to_int64`` in ``repairs``; any other float (fractional, NaN,
      inf, or so large that float64 may have rounded it) is a DataError naming the row;
    * text stays text; int64 -> decimal text when ``target`` is string.

    Messages name ``source`` (the file), the row (``row_offset + i``) and ``field_name`` (the source
    column). Nulls pass through (the caller reports them).
    """
    arr = storage(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_floating(t):
        v = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        present = ~arr.is_null().to_numpy(zero_copy_only=False)
        bad = present & ~(
            np.isfinite(v)
            & (np.abs(np.nan_to_num(v)) <= FLOAT64_EXACT_INT)
            & (np.nan_to_num(v) == np.round(np.nan_to_num(v)))
        )
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            x = float(v[i])
            why = (
                "is not an integer"
                if np.isfinite(x) and abs(x) <= FLOAT64_EXACT_INT
                else "is beyond 2**53, where floats cannot hold every integer (the id may have been rounded)"
            )
            raise DataError(
                f"{source}: row {row_offset + i}: field {field_name!r}: {t} id {x!r} {why}; "
                "store ids as int64 or strings"
            )
        if repairs is not None:
            repairs.add(ID_FLOAT_REPAIR, int(present.sum()))
        arr = pa.array(np.where(present, v, 0).astype(np.int64), pa.int64(), mask=~present)
        t = pa.int64()
    if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
        big = pc.fill_null(pc.greater(arr, pa.scalar(INT64_MAX, t)), False).to_numpy(zero_copy_only=False)
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise DataError(
                f"{source}: row {row_offset + i}: field {field_name!r}: uint64 id {arr[i].as_py()} "
                "is above 2**63 - 1, the int64 limit; store ids as strings"
            )
    if pa.types.is_integer(t):
        arr = arr.cast(pa.int64())
        return arr.cast(pa.string()) if _is_text(target) else arr
    if _is_text(t):
        if not _is_text(target):
            raise DataError(f"{source}: field {field_name!r}: text ids in a data set whose ids are int64")
        return arr.cast(pa.string())
    raise DataError(f"{source}: field {field_name!r}: object_id must be integer or string, got {t}")


def duplicate_ids(ids: pa.Array | pa.ChunkedArray) -> tuple[int, int] | None:
    """``(first_row, second_row)`` of the earliest repeated id (by its second row), or None.

    Sort-based with pyarrow compute (C++, no Python loop): O(N log N) time, memory of the id
    column alone, for int64 and string ids alike.
    """
    arr = storage(ids)
    n = len(arr)
    if n < 2:
        return None
    order = pc.sort_indices(arr).to_numpy()
    s = arr.take(pa.array(order))
    same = pc.equal(s.slice(1), s.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    same &= ~s.slice(1).is_null().to_numpy(zero_copy_only=False)
    hits = np.flatnonzero(same)
    if not hits.size:
        return None
    # sort_indices is stable: within equal ids, rows ascend; order[k+1] is a later copy of order[k]
    second = order[hits + 1]
    k = int(np.argmin(second))
    j = int(hits[k])
    while j > 0 and same[j - 1]:  # the first row of that id
        j -= 1
    return int(order[j]), int(second[k])
