"""validate_batch: one-line errors and counted spectrum repairs on canonical batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fmb.data import canonical as C
from fmb.data.canonical import DataError, Repairs
from fmb.data.validate import validate_batch

NPIX = 20


def canonical_batch(
    n: int = 4, h: int = 3, ids=None, image=None, flux=None, ivar=None, mask=None, with_spectrum: bool = True
) -> pa.RecordBatch:
    ids = list(range(100, 100 + n)) if ids is None else ids
    image = np.ones((n, 4, h, h), np.float32) if image is None else image
    fields = [pa.field(C.OBJECT_ID, pa.int64()), C.image_field(["VIS", "Y", "J", "H"], h, h, 0.1)]
    cols = [
        pa.array(ids, pa.int64()),
        pa.FixedSizeListArray.from_arrays(pa.array(image.reshape(-1), pa.float32()), 4 * h * h),
    ]
    if with_spectrum:
        flux = np.ones((n, NPIX), np.float32) if flux is None else flux
        ivar = np.ones((n, NPIX), np.float32) if ivar is None else ivar
        mask = np.zeros((n, NPIX), bool) if mask is None else mask
        fields += C.spectrum_fields(NPIX, 3600.0, 0.8)
        cols += [pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), NPIX) for a in (flux, ivar, mask)]
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields))


def test_clean_batch_passes_unchanged():
    b = canonical_batch()
    rep = Repairs()
    out = validate_batch(b, "data.parquet", 0, rep)
    assert out.equals(b)
    assert rep.counts == {}


def test_missing_and_null_object_id():
    b = canonical_batch()
    with pytest.raises(DataError, match="missing column 'object_id'"):
        validate_batch(b.drop_columns([C.OBJECT_ID]), "x.parquet", 0, Repairs())
    b = canonical_batch(ids=[1, None, 3, 4])
    with pytest.raises(DataError, match=r"^x.parquet: row 11: field 'object_id' is null$"):
        validate_batch(b, "x.parquet", 10, Repairs())


def test_duplicate_ids_within_batch_and_across_batches():
    with pytest.raises(DataError, match=r"duplicate object_id=7 at rows 21 and 23"):
        validate_batch(canonical_batch(ids=[5, 7, 6, 7]), "d.parquet", 20, Repairs())
    seen: dict = {}
    validate_batch(canonical_batch(ids=[1, 2, 3, 4]), "d.parquet", 0, Repairs(), seen)
    with pytest.raises(DataError, match=r"d.parquet: row 6: duplicate object_id=3, already at d.parquet row"):
        validate_batch(canonical_batch(ids=[5, 6, 3, 8]), "d.parquet", 4, Repairs(), seen)
    plain: set = set()
    validate_batch(canonical_batch(ids=[1, 2, 3, 4]), "d.parquet", 0, Repairs(), plain)
    assert plain == {1, 2, 3, 4}
    with pytest.raises(DataError, match="duplicate object_id=4"):
        validate_batch(canonical_batch(ids=[4, 9, 10, 11]), "d.parquet", 4, Repairs(), plain)


def test_nonfinite_image_is_an_error_with_file_row_id_field():
    img = np.ones((4, 4, 3, 3), np.float32)
    img[2, 1, 0, :] = [np.nan, np.inf, -np.inf]
    with pytest.raises(DataError) as e:
        validate_batch(canonical_batch(image=img), "data.parquet", 15, Repairs())
    assert str(e.value) == "data.parquet: row 17 (object_id=102): field 'image': 3 non-finite pixels"


def test_image_shape_must_match_metadata():
    b = canonical_batch()
    fld = b.schema.field(C.IMAGE).with_metadata({b"shape": b"4,4,4", b"bands": b"VIS,Y,J,H"})
    bad = pa.RecordBatch.from_arrays(b.columns, schema=b.schema.set(1, fld))
    with pytest.raises(DataError, match=r"'image': 36 values per row do not match its shape \(4, 4, 4\)"):
        validate_batch(bad, "f.parquet", 0, Repairs())


def test_variable_lists_become_fixed_and_ragged_is_an_error():
    b = canonical_batch(n=2)
    flux = pa.array([np.ones(NPIX, np.float32), np.ones(NPIX, np.float32)], pa.list_(pa.float32()))
    schema = b.schema.set(2, pa.field(C.FLUX, flux.type, metadata=b.schema.field(C.FLUX).metadata))
    out = validate_batch(
        pa.RecordBatch.from_arrays([*b.columns[:2], flux, *b.columns[3:]], schema=schema), "f", 0, Repairs()
    )
    assert pa.types.is_fixed_size_list(out.schema.field(C.FLUX).type)
    assert out.schema.field(C.FLUX).metadata == b.schema.field(C.FLUX).metadata
    ragged = pa.array([np.ones(NPIX, np.float32), np.ones(NPIX - 1, np.float32)], pa.list_(pa.float32()))
    with pytest.raises(DataError, match=r"row 1 \(object_id=101\): field 'flux': length 19, expected 20"):
        validate_batch(
            pa.RecordBatch.from_arrays([*b.columns[:2], ragged, *b.columns[3:]], schema=schema), "f", 0, Repairs()
        )


def test_spectrum_length_mismatch_between_columns():
    b = canonical_batch(n=2)
    ivar = pa.FixedSizeListArray.from_arrays(pa.array(np.ones(2 * (NPIX + 1), np.float32)), NPIX + 1)
    schema = b.schema.set(3, pa.field(C.IVAR, ivar.type))
    with pytest.raises(DataError, match="field 'ivar': length 21, expected 20"):
        validate_batch(
            pa.RecordBatch.from_arrays([*b.columns[:3], ivar, b.columns[4]], schema=schema), "f", 0, Repairs()
        )


def test_spectrum_nonfinite_and_negative_ivar_are_counted_repairs():
    flux = np.ones((4, NPIX), np.float32)
    ivar = np.ones((4, NPIX), np.float32)
    flux[0, :3] = [np.nan, np.inf, -np.inf]
    ivar[1, 5] = np.nan
    ivar[2, 6:8] = -1.0
    rep = Repairs()
    out = validate_batch(canonical_batch(flux=flux, ivar=ivar), "s.parquet", 0, rep)
    assert rep.counts == {"spectrum_nonfinite_pixels_masked": 4, "spectrum_negative_ivar_masked": 2}
    f, iv, m = (C.column_array(out, k, t) for k, t in ((C.FLUX, np.float32), (C.IVAR, np.float32), (C.MASK, bool)))
    assert np.isfinite(f).all() and np.isfinite(iv).all() and (iv >= 0).all()
    assert m[0, :3].all() and m[1, 5] and m[2, 6:8].all() and m.sum() == 6
    assert (f[0, :3] == 0).all() and (iv[0, :3] == 0).all() and (iv[2, 6:8] == 0).all()
    assert out.schema.field(C.FLUX).metadata == canonical_batch().schema.field(C.FLUX).metadata


def test_fully_masked_spectrum_is_counted_not_an_error():
    mask = np.zeros((4, NPIX), bool)
    mask[3] = True
    rep = Repairs()
    out = validate_batch(canonical_batch(mask=mask), "s.parquet", 0, rep)
    assert rep.counts == {"spectrum_empty": 1}
    assert out.num_rows == 4 and C.column_array(out, C.IMAGE).shape == (4, 4, 3, 3)


def test_string_ids_and_image_only_batches():
    b = canonical_batch(with_spectrum=False)
    b = b.set_column(0, pa.field(C.OBJECT_ID, pa.string()), pa.array(["a", "b", "c", "a"]))
    with pytest.raises(DataError, match="duplicate object_id=a at rows 0 and 3"):
        validate_batch(b, "s", 0, Repairs())


def test_validation_is_cheap():
    import time

    n = 256
    b = canonical_batch(n=n, h=64, flux=np.ones((n, 7781), np.float32)[:, :NPIX])
    t0 = time.perf_counter()
    for _ in range(5):
        validate_batch(b, "s", 0, Repairs(), set())
    assert (time.perf_counter() - t0) / 5 < 0.5
