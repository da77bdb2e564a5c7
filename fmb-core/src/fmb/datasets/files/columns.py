"""Column extraction: raw Arrow columns -> canonical ids, images (layout detection), spectra, labels.

Images may be fixed-size lists (give ``image_shape``), nested lists, or encoded bytes (PNG/JPEG
via Pillow, ``.npy``; also Hugging Face ``Image`` structs ``{bytes, path}``). Spectra give
``ivar`` or ``error``; ``ivar = 1/error**2`` where the error is finite and > 0, else ``ivar = 0``
and ``mask = True`` (counted as ``spectrum_invalid_error_masked``). Every error is a one-line
:class:`~fmb.errors.DataError` naming the file, the row (object id) and the field.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmb.data import canonical as C
from fmb.data.canonical import Repairs, storage
from fmb.data.validate import row_label
from fmb.datasets.files.mapping import Plan
from fmb.datasets.files.sources import SourceFile, _one_line
from fmb.errors import DataError


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


def nested_to_numpy(
    arr: pa.Array, source: str, name: str, row_offset: int, ids: Any, dtype: Any = np.float32
) -> np.ndarray:
    """A (nested) list column of equal-shape rows -> ``[N, *shape]``; ragged or null -> DataError."""
    cur = storage(arr)
    n = len(cur)
    shape: list[int] = []
    while _is_list(cur.type):
        if cur.null_count:
            k = int(np.flatnonzero(cur.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(
                f"{source}: {row_label(ids, k // max(int(np.prod(shape)), 1), row_offset)}: field {name!r} is null"
            )
        if pa.types.is_fixed_size_list(cur.type):
            length = cur.type.list_size
        else:
            lengths = np.diff(cur.offsets.to_numpy())
            length = int(lengths[0]) if len(lengths) else 0
            bad = np.flatnonzero(lengths != length)
            if bad.size:
                k = int(bad[0]) // max(int(np.prod(shape)), 1)
                first = row_label(ids, 0, row_offset)
                raise DataError(
                    f"{source}: {row_label(ids, k, row_offset)}: field {name!r} is ragged "
                    f"(length {int(lengths[bad[0]])}, {first} has {length})"
                )
        shape.append(length)
        cur = storage(cur.flatten())
    if cur.null_count:
        k = int(np.flatnonzero(cur.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"{source}: {row_label(ids, k // max(int(np.prod(shape)), 1), row_offset)}: field {name!r} has null values"
        )
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
        raise DataError(f"{source}: {where}: field {name!r}: cannot decode image bytes ({_one_line(exc)})") from None


def _encoded_rows(
    arr: pa.Array, source: str, name: str, row_offset: int, ids: Any, base_dir: Path | None
) -> list[np.ndarray]:
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


def image_rows(
    arr: pa.Array,
    source: str,
    name: str,
    row_offset: int,
    ids: Any,
    base_dir: Path | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
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
                raise DataError(
                    f"{source}: {row_label(ids, i, row_offset)}: field {name!r}: shape "
                    f"{r.shape}, {row_label(ids, 0, row_offset)} has {rows[0].shape}"
                )
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
    if (
        w.shape[1] == C.DESI_NPIX
        and abs(start - C.DESI_WAVE_START) < 0.01 * C.DESI_WAVE_STEP
        and abs(step - C.DESI_WAVE_STEP) < 1e-6
    ):
        start, step = C.DESI_WAVE_START, C.DESI_WAVE_STEP
    grid = start + step * np.arange(w.shape[1])
    return (start, round(step, 9)) if np.allclose(w, grid, rtol=0, atol=0.01 * step) else None


def _image_array(
    batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any, base_dir: Path | None
) -> np.ndarray:
    if len(plan.image) == 1:
        a = image_rows(get_column(batch, plan.image[0], source), source, C.IMAGE, row_offset, ids, base_dir)
        if a.ndim == 2:  # flat rows
            if plan.image_shape is None:
                raise DataError(f"{source}: field 'image' ({plan.image[0]!r}) is flat; give image_shape=B,H,W")
            if a.shape[1] != int(np.prod(plan.image_shape)):
                raise DataError(
                    f"{source}: field 'image' ({plan.image[0]!r}): {a.shape[1]} values per row, "
                    f"image_shape {plan.image_shape} needs {int(np.prod(plan.image_shape))}"
                )
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
            raise DataError(f"{source}: field {col!r}: expected one 2-D band per row, got shape {a.shape[1:]}")
        if bands and a.shape != bands[0].shape:
            raise DataError(
                f"{source}: field {col!r}: band shape {a.shape[1:]} differs from {plan.image[0]!r} {bands[0].shape[1:]}"
            )
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
    raise DataError(
        f"{source}: field 'image' ({column!r}): stamps of shape {shape} could be bands-first or "
        "bands-last; give image_layout=chw or image_layout=hwc"
    )


def _encoded_png(batch: pa.RecordBatch, col: str) -> bool:
    """True for a column of PNG/JPEG bytes (decoded channels-first already)."""
    arr = storage(get_column(batch, col, ""))
    if _is_list(arr.type) or not len(arr):
        return False
    if pa.types.is_struct(arr.type):
        arr = storage(arr.flatten()[arr.type.get_field_index("bytes")])
    first = next((v for v in arr.to_pylist()[:1] if v), b"")
    return not first.startswith(b"\x93NUMPY")


def _rgb_array(
    batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any, base_dir: Path | None
) -> np.ndarray:
    """The rgb column as ``[N, 3, H, W]`` uint8 (``H x W x 3`` arrays are transposed)."""
    rgb = image_rows(get_column(batch, plan.rgb, source), source, C.RGB, row_offset, ids, base_dir, np.uint8)
    if rgb.ndim == 4 and rgb.shape[-1] in (3, 4) and rgb.shape[1] not in (3, 4):
        rgb = rgb[..., :3].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(rgb)


def _object_ids(
    batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int = 0, repairs: Repairs | None = None
) -> pa.Array:
    """The id column(s) as the data set's canonical id type (see :func:`fmb.data.canonical.canonical_ids`)."""
    cols = [
        C.canonical_ids(get_column(batch, c, source), plan.id_type, source, c, row_offset, repairs)
        for c in plan.object_id
    ]
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


def _spectrum(
    batch: pa.RecordBatch, plan: Plan, source: str, row_offset: int, ids: Any, repairs: Repairs
) -> dict[str, np.ndarray]:
    flux_arr = get_column(batch, plan.flux, source)
    n = len(flux_arr)
    valid = ~flux_arr.is_null().to_numpy(zero_copy_only=False)
    npix = plan.npix or 0
    out = {
        C.FLUX: np.zeros((n, npix), np.float32),
        C.IVAR: np.zeros((n, npix), np.float32),
        C.MASK: np.ones((n, npix), bool),
    }
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
            raise DataError(f"{source}: field {name!r}: length {m.shape[1:]} differs from the flux length {npix}")
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
        raise DataError(
            f"{source}: {row_label(ids, i, row_offset)}: field 'wavelength' is not the shared "
            f"grid {plan.wavelength_start}+{plan.wavelength_step}*i; open with wavelength=column"
        )


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
        fields += C.spectrum_fields(
            plan.npix,
            None if per_row else plan.wavelength_start,
            None if per_row else plan.wavelength_step,
            unit=plan.flux_unit,
        )
        if per_row:
            fields.append(pa.field(C.WAVELENGTH, pa.list_(pa.float32(), plan.npix)))
    label_types = {f.name: f.type for f in C.label_fields()}
    fields += [pa.field(k, label_types[k]) for k in C.LABEL_COLUMNS if k in plan.labels]
    return pa.schema(fields)


def convert_batch(
    batch: pa.RecordBatch,
    plan: Plan,
    schema: pa.Schema,
    source: str,
    row_offset: int,
    repairs: Repairs,
    base_dir: Path | None = None,
) -> pa.RecordBatch:
    """One raw batch -> a canonical batch of ``schema`` (not yet validated)."""
    ids_arr = _object_ids(batch, plan, source, row_offset, repairs)
    ids = ids_arr.to_numpy(zero_copy_only=False)
    cols: dict[str, pa.Array] = {C.OBJECT_ID: ids_arr}
    if C.IMAGE in schema.names:
        img = _image_array(batch, plan, source, row_offset, ids, base_dir)
        if img.shape[1:] != tuple(plan.image_shape):
            raise DataError(
                f"{source}: {row_label(ids, 0, row_offset)}: field 'image': shape "
                f"{img.shape[1:]}, expected {tuple(plan.image_shape)}"
            )
        if plan.band_scale:
            img = img * np.asarray(plan.band_scale, np.float32)[None, :, None, None]
        cols[C.IMAGE] = _fixed(img.astype(np.float32, copy=False), pa.float32())
    if C.RGB in schema.names:
        rgb = _rgb_array(batch, plan, source, row_offset, ids, base_dir)
        if rgb.shape[1:] != tuple(plan.rgb_shape):
            raise DataError(
                f"{source}: {row_label(ids, 0, row_offset)}: field 'rgb': shape {rgb.shape[1:]}, "
                f"expected {tuple(plan.rgb_shape)}"
            )
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
