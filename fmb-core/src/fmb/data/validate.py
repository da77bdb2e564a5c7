"""Validation of canonical batches: clear one-line errors, or documented and counted repairs.

Every dataset passes each batch through :func:`validate_batch` before yielding it.

Errors (:class:`fmb.data.canonical.DataError`, one line naming file, row, object_id and field):

* ``object_id`` missing or null; an ``object_id`` seen twice (both rows are named);
* an ``image``/``rgb`` whose length does not match the ``shape`` in its field metadata;
* spectrum columns of unequal length (ragged), or a spectrum without a wavelength grid;
* non-finite (NaN/inf) image pixels -- images are never silently zero-filled.

Counted repairs (added to the :class:`~fmb.data.canonical.Repairs` passed in):

* ``spectrum_nonfinite_pixels_masked``: a NaN/inf ``flux`` or ``ivar`` pixel gets
  ``mask=True``, ``ivar=0`` and ``flux=0`` (so NaN cannot leak into a model);
* ``spectrum_negative_ivar_masked``: an ``ivar < 0`` pixel gets ``mask=True``, ``ivar=0``;
* ``spectrum_empty``: a row whose spectrum is entirely masked keeps its image; models must
  treat the spectrum modality as missing for that row;
* ``spectrum_grid_reversed``: a row whose ``wavelength`` column runs red to blue has
  wavelength, flux, ivar and mask reversed, so every model receives ascending grids. A grid that
  is neither strictly ascending nor strictly descending is an error naming the row.

Duplicate ``object_id`` s across the whole data set (every file, every shard) are the business of
:func:`check_unique_ids`, run once per data set by :func:`fmb.protocol.run.open_dataset` on every
path (plain run, ``--shards``, ``fmb embed --shard``, ``fmb detect``, the executors, Slurm tasks).
``validate_batch`` still rejects an id repeated inside one batch.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.data.canonical import DataError, Repairs

IMAGE_FIELDS = (C.IMAGE, C.RGB)
SPECTRUM_FIELDS = (C.FLUX, C.IVAR, C.MASK)


def row_label(ids: np.ndarray | list | None, i: int, row_offset: int) -> str:
    """``row 17 (object_id=123)`` for row ``i`` of a batch."""
    if ids is None:
        return f"row {row_offset + i}"
    return f"row {row_offset + i} (object_id={ids[i]})"


def fixed_list_values(
    arr: pa.Array, size: int | None, source: str, name: str, row_offset: int = 0, ids: np.ndarray | list | None = None
) -> tuple[np.ndarray, int]:
    """Flat values and row length of a (fixed-size or variable) list column of equal-length rows.

    ``size`` is the expected length (None: take the first row's). Raises a one-line DataError
    for a null row or a row of another length.
    """
    arr = C.storage(arr)
    n = len(arr)
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{source}: {row_label(ids, i, row_offset)}: field {name!r} is null")
    if pa.types.is_fixed_size_list(arr.type):
        length = arr.type.list_size
        if size is not None and length != size:
            raise DataError(f"{source}: field {name!r}: length {length}, expected {size}")
        return arr.flatten(), length
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise DataError(f"{source}: field {name!r}: expected a list column, got {arr.type}")
    offsets = arr.offsets.to_numpy()
    lengths = np.diff(offsets)
    want = size if size is not None else (int(lengths[0]) if n else 0)
    bad = np.flatnonzero(lengths != want)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{source}: {row_label(ids, i, row_offset)}: field {name!r}: length "
            f"{int(lengths[i])}, expected {want} (ragged)"
        )
    return arr.flatten(), want


def _to_fixed(
    arr: pa.Array, fld: pa.Field, size: int, source: str, row_offset: int, ids: np.ndarray | list | None
) -> pa.Array:
    values, _ = fixed_list_values(arr, size, source, fld.name, row_offset, ids)
    return pa.FixedSizeListArray.from_arrays(values.cast(fld.type.value_type), size)


def _ids(batch: pa.RecordBatch, source: str, row_offset: int) -> np.ndarray:
    if C.OBJECT_ID not in batch.schema.names:
        raise DataError(f"{source}: missing column 'object_id' (columns: {', '.join(batch.schema.names)})")
    col = C.storage(batch.column(C.OBJECT_ID))
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{source}: row {row_offset + i}: field 'object_id' is null")
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataError(f"{source}: field 'object_id' must be int64 or string, got {col.type}")
    return col.to_numpy(zero_copy_only=False)


def _check_duplicates(ids: np.ndarray, source: str, row_offset: int, seen_ids: set | dict | None) -> None:
    if len(ids):
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = uniq[np.flatnonzero(counts > 1)[0]]
            rows = np.flatnonzero(ids == dup)[:2] + row_offset
            raise DataError(f"{source}: duplicate object_id={dup} at rows {rows[0]} and {rows[1]}")
    if seen_ids is None:
        return
    items = ids.tolist()
    for i, oid in enumerate(items):
        if oid in seen_ids:
            where = seen_ids[oid] if isinstance(seen_ids, dict) else "an earlier batch"
            raise DataError(f"{source}: row {row_offset + i}: duplicate object_id={oid}, already at {where}")
    if isinstance(seen_ids, dict):
        seen_ids.update((oid, f"{source} row {row_offset + i}") for i, oid in enumerate(items))
    else:
        seen_ids.update(items)


_CHECKED: set[tuple[str, str, str]] = set()


def check_unique_ids(dataset) -> None:
    """Refuse a data set in which any ``object_id`` occurs twice, wherever the two rows are.

    Reads only the id column (``dataset.read_columns(["object_id"])``) and finds repeats by sorting
    (:func:`fmb.data.canonical.duplicate_ids`). Done once per data set identity (class, name and
    fingerprint) per process. Rows are named through ``dataset.locate(row) -> (file, row in file)``
    when the dataset has it. Raises a one-line DataError:
    ``b.parquet: row 50: duplicate object_id=7, already at a.parquet row 3``.
    """
    ident = (type(dataset).__qualname__, str(dataset.name), str(dataset.fingerprint))
    if ident in _CHECKED:
        return
    ids = dataset.read_columns([C.OBJECT_ID]).column(C.OBJECT_ID)
    pair = C.duplicate_ids(ids)
    if pair is not None:
        first, second = pair
        locate = getattr(dataset, "locate", None) or (lambda r: (str(dataset.name), r))
        (f1, r1), (f2, r2) = locate(first), locate(second)
        raise DataError(f"{f2}: row {r2}: duplicate object_id={ids[second].as_py()}, already at {f1} row {r1}")
    _CHECKED.add(ident)


def _check_grid_order(
    wave: np.ndarray,
    source: str,
    row_offset: int,
    ids: np.ndarray | None,
    name: str = C.WAVELENGTH,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of ``wave [N, L]`` that run red to blue (strictly descending); others must ascend strictly.

    Raises a one-line DataError naming file, row and field for a grid that is neither (a repeated or
    out-of-order value, or a non-finite one). Rows in ``skip`` (no spectrum at all) are not checked.
    """
    if wave.shape[1] < 2:
        return np.zeros(len(wave), bool)
    d = np.diff(wave, axis=1)
    with np.errstate(invalid="ignore"):
        up, down = (d > 0).all(axis=1), (d < 0).all(axis=1)
    bad = ~(up | down)
    if skip is not None:
        bad &= ~skip
        down &= ~skip
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        j = int(np.flatnonzero(~(d[i] > 0) if d[i, 0] > 0 else ~(d[i] < 0))[0]) + 1
        raise DataError(
            f"{source}: {row_label(ids, i, row_offset)}: field {name!r} is not monotonic "
            f"(pixel {j}: {float(wave[i, j - 1]):g} then {float(wave[i, j]):g})"
        )
    return down


def _check_image(batch: pa.RecordBatch, idx: int, source: str, row_offset: int, ids: np.ndarray) -> pa.Array | None:
    """Check shape and finiteness; return a converted column, or None when unchanged."""
    fld = batch.schema.field(idx)
    shape = C.field_shape(fld)
    size = int(np.prod(shape))
    col = C.storage(batch.column(idx))
    if pa.types.is_fixed_size_list(col.type) and col.type.list_size != size:
        raise DataError(
            f"{source}: field {fld.name!r}: {col.type.list_size} values per row do not match its shape {shape}"
        )
    if fld.name == C.IMAGE:
        bands = C.field_meta(fld, "bands")
        if bands is not None and len(bands.split(",")) != shape[0]:
            raise DataError(f"{source}: field 'image': {len(bands.split(','))} band names for {shape[0]} bands")
    converted = not pa.types.is_fixed_size_list(col.type)
    if converted:
        col = _to_fixed(col, fld, size, source, row_offset, ids)
    if pa.types.is_floating(col.type.value_type):
        values = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), size)
        bad = (~np.isfinite(values)).sum(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: {row_label(ids, i, row_offset)}: field {fld.name!r}: {int(bad[i])} non-finite pixels"
            )
    return col if converted else None


def _check_spectrum(
    batch: pa.RecordBatch, source: str, row_offset: int, ids: np.ndarray, repairs: Repairs
) -> dict[str, pa.Array]:
    names = batch.schema.names
    present = [c for c in SPECTRUM_FIELDS if c in names]
    if not present:
        return {}
    if len(present) < len(SPECTRUM_FIELDS):
        missing = [c for c in SPECTRUM_FIELDS if c not in names]
        raise DataError(f"{source}: spectrum needs flux, ivar and mask; missing {', '.join(missing)}")
    flux_fld = batch.schema.field(C.FLUX)
    has_grid = C.field_meta(flux_fld, "wavelength_start") is not None
    if C.WAVELENGTH not in names and not has_grid:
        raise DataError(f"{source}: spectrum has neither a 'wavelength' column nor a grid in the 'flux' field metadata")
    if C.WAVELENGTH not in names and not float(C.field_meta(flux_fld, "wavelength_step", "nan")) > 0:
        raise DataError(
            f"{source}: field 'flux': wavelength_step "
            f"{C.field_meta(flux_fld, 'wavelength_step')} in its metadata must be positive"
        )
    flux, npix = fixed_list_values(batch.column(C.FLUX), None, source, C.FLUX, row_offset, ids)
    arrays = {C.FLUX: flux}
    for name in (C.IVAR, C.MASK) + ((C.WAVELENGTH,) if C.WAVELENGTH in names else ()):
        arrays[name], _ = fixed_list_values(batch.column(name), npix, source, name, row_offset, ids)
    n = batch.num_rows
    f = arrays[C.FLUX].to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, npix)
    iv = arrays[C.IVAR].to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, npix)
    m = arrays[C.MASK].to_numpy(zero_copy_only=False).astype(bool, copy=False).reshape(n, npix)
    wave = None
    if C.WAVELENGTH in names:
        wave = arrays[C.WAVELENGTH].to_numpy(zero_copy_only=False).reshape(n, npix)
        down = _check_grid_order(wave, source, row_offset, ids, skip=m.all(axis=1))
        if down.any():
            wave, f, iv, m = wave.copy(), f.copy(), iv.copy(), m.copy()
            for a in (wave, f, iv, m):
                a[down] = a[down, ::-1]
            repairs.add("spectrum_grid_reversed", int(down.sum()))
    reversed_rows = wave is not None and bool(down.any())
    nonfinite = ~(np.isfinite(f) & np.isfinite(iv))
    negative = (iv < 0) & ~nonfinite
    changed = bool(nonfinite.any() or negative.any())
    if changed:
        f, iv, m = f.copy(), iv.copy(), m | nonfinite | negative
        f[nonfinite] = 0.0
        iv[nonfinite | negative] = 0.0
        repairs.add("spectrum_nonfinite_pixels_masked", int(nonfinite.sum()))
        repairs.add("spectrum_negative_ivar_masked", int(negative.sum()))
    repairs.add("spectrum_empty", int(m.all(axis=1).sum()) if npix else n)
    out: dict[str, pa.Array] = {}
    types = {C.FLUX: pa.float32(), C.IVAR: pa.float32(), C.MASK: pa.bool_()}
    for name, values in ((C.FLUX, f), (C.IVAR, iv), (C.MASK, m)):
        if changed or reversed_rows or not pa.types.is_fixed_size_list(batch.schema.field(name).type):
            out[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), types[name]), npix)
    if reversed_rows:
        wtype = C.storage(batch.column(C.WAVELENGTH)).type.value_type
        out[C.WAVELENGTH] = pa.FixedSizeListArray.from_arrays(pa.array(wave.ravel(), wtype), npix)
    elif C.WAVELENGTH in names and not pa.types.is_fixed_size_list(C.storage(batch.column(C.WAVELENGTH)).type):
        out[C.WAVELENGTH] = pa.FixedSizeListArray.from_arrays(arrays[C.WAVELENGTH], npix)
    return out


def validate_batch(
    batch: pa.RecordBatch,
    source: str,
    row_offset: int,
    repairs: Repairs,
    seen_ids: set | dict | None = None,
    duplicates: bool = True,
) -> pa.RecordBatch:
    """Check a canonical batch and apply the documented repairs; return the (possibly new) batch.

    ``source`` names the file in messages; row ``i`` of the batch is reported as row
    ``row_offset + i``. ``seen_ids`` (a set, or a dict id -> "file row n" for better messages)
    collects ids across batches for the duplicate check and is updated in place.
    Variable-length list columns of equal length are returned as fixed-size lists.
    ``duplicates=False`` leaves repeated ids to :func:`check_unique_ids` (the id scan itself).
    """
    ids = _ids(batch, source, row_offset)
    if duplicates:
        _check_duplicates(ids, source, row_offset, seen_ids)
    replaced: dict[str, pa.Array] = {}
    for name in IMAGE_FIELDS:
        idx = batch.schema.get_field_index(name)
        if idx >= 0:
            col = _check_image(batch, idx, source, row_offset, ids)
            if col is not None:
                replaced[name] = col
    replaced.update(_check_spectrum(batch, source, row_offset, ids, repairs))
    _check_coordinates(batch, source, row_offset, ids)
    return _replace_columns(batch, replaced)


#: Valid ranges of the sky coordinates, degrees (ra wraps at 360; 360 itself is refused, as astropy's Longitude
#: would silently wrap it to 0).
COORDINATE_RANGES = {C.RA: (0.0, 360.0, False), C.DEC: (-90.0, 90.0, True)}


def _check_coordinates(batch: pa.RecordBatch, source: str, row_offset: int, ids: np.ndarray) -> None:
    """``ra``/``dec`` where present: numbers in range or null; a DataError naming the file, row and value."""
    for name, (lo, hi, closed) in COORDINATE_RANGES.items():
        if name not in batch.schema.names:
            continue
        arr = batch.column(name)
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
            raise DataError(f"{source}: column {name!r} must be numeric degrees, got {arr.type}")
        v = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        bad = valid & ~((v >= lo) & ((v <= hi) if closed else (v < hi)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rng = f"[{lo:g}, {hi:g}{']' if closed else ')'}"
            raise DataError(
                f"{source}: {row_label(ids, i, row_offset)}: {name} = {float(v[i])!r} degrees is outside {rng}"
            )


def _replace_columns(batch: pa.RecordBatch, replaced: dict[str, pa.Array]) -> pa.RecordBatch:
    if not replaced:
        return batch
    fields, cols = [], []
    for i, fld in enumerate(batch.schema):
        col = replaced.get(fld.name, batch.column(i))
        if col.type != fld.type:
            fld = pa.field(fld.name, col.type, fld.nullable, fld.metadata)
        fields.append(fld)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields, metadata=batch.schema.metadata))
