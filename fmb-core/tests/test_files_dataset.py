"""The generic ``parquet`` dataset: column mappings, image encodings, Arrow files, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from fmb.data import canonical as C
from fmb.data.canonical import DataError
from fmb.datasets import files as FD

L = 30


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def user_table(n: int = 5, seed: int = 0) -> tuple[pa.Table, dict]:
    """A user's own layout: different names, nested-list cutouts, error instead of ivar."""
    rng = np.random.default_rng(seed)
    raw = {
        "id": np.arange(10, 10 + n),
        "cutout": rng.normal(size=(n, 2, 4, 4)).astype(np.float32),
        "spec_flux": rng.normal(size=(n, L)).astype(np.float32),
        "spec_err": np.full((n, L), 0.5, np.float32),
        "z": rng.uniform(0, 1, n),
    }
    t = pa.table(
        {
            "id": pa.array(raw["id"]),
            "cutout": pa.array([x.tolist() for x in raw["cutout"]]),
            "spec_flux": pa.array(list(raw["spec_flux"]), pa.list_(pa.float32())),
            "spec_err": pa.array(list(raw["spec_err"]), pa.list_(pa.float32())),
            "z": pa.array(raw["z"]),
        }
    )
    return t, raw


def _all(ds) -> pa.Table:
    return pa.Table.from_batches(list(ds.iter_batches(2)))


def test_cli_string_mapping(tmp_path):
    t, raw = user_table()
    path = tmp_path / "mine.parquet"
    pq.write_table(t, path)
    cols = "object_id=id;image=cutout;flux=spec_flux;error=spec_err;redshift=z"
    ds = FD.open_dataset(
        str(path),
        columns=cols,
        image_bands="g,r",
        pixel_scale="0.262",
        wavelength_start="4000",
        wavelength_step="2",
        batch_rows="3",
    )
    assert ds.name == "parquet" and len(ds) == 5
    out = _all(ds)
    assert out.column(C.OBJECT_ID).to_pylist() == raw["id"].tolist()
    np.testing.assert_array_equal(C.column_array(out, C.IMAGE), raw["cutout"])
    np.testing.assert_allclose(C.column_array(out, C.IVAR), 4.0)
    np.testing.assert_allclose(C.wavelength(out), 4000 + 2 * np.arange(L))
    assert C.image_bands(out.schema) == ["g", "r"]
    assert C.field_meta(out.schema.field(C.IMAGE), "pixel_scale") == "0.262"
    assert out.schema.field("redshift").type == pa.float32()
    assert ds.options()["columns"]["image"] == "cutout"


def test_toml_table_mapping_with_one_column_per_band(tmp_path):
    n = 3
    g, r = np.ones((n, 4, 4), np.float32), 2 * np.ones((n, 4, 4), np.float32)
    t = pa.table(
        {
            "oid": ["a", "b", "c"],
            "g": pa.array([x.tolist() for x in g]),
            "r": pa.array([x.tolist() for x in r]),
            "label": [False, True, False],
            "kind": [None, "merger", "none"],
        }
    )
    pq.write_table(t, tmp_path / "bands.parquet")
    ds = FD.open_dataset(
        tmp_path / "bands.parquet",
        columns={"object_id": "oid", "image": ["g", "r"], "is_anomaly": "label", "anomaly_class": "kind"},
    )
    out = _all(ds)
    img = C.column_array(out, C.IMAGE)
    assert img.shape == (3, 2, 4, 4) and (img[:, 1] == 2).all()
    assert out.schema.field(C.OBJECT_ID).type == pa.string()
    assert out.column(C.ANOMALY_CLASS).to_pylist() == ["normal", "merger", "normal"]
    assert ds.modalities == ["image"] and ds.has_labels


def test_canonical_files_need_no_mapping(tmp_path):
    n = 4
    schema = pa.schema(
        [pa.field(C.OBJECT_ID, pa.int64()), C.image_field(["VIS", "Y"], 3, 3, 0.1), *C.spectrum_fields(L, 5000.0, 1.0)]
    )
    img = np.arange(n * 18, dtype=np.float32)
    cols = [
        pa.array(range(n), pa.int64()),
        pa.FixedSizeListArray.from_arrays(pa.array(img), 18),
        pa.FixedSizeListArray.from_arrays(pa.array(np.ones(n * L, np.float32)), L),
        pa.FixedSizeListArray.from_arrays(pa.array(np.ones(n * L, np.float32)), L),
        pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * L, bool)), L),
    ]
    pq.write_table(pa.table(cols, schema=schema), tmp_path / "canon.parquet")
    ds = FD.open_dataset(tmp_path / "canon.parquet")
    out = _all(ds)
    assert C.field_shape(out.schema.field(C.IMAGE)) == (2, 3, 3)
    assert C.image_bands(out.schema) == ["VIS", "Y"]
    np.testing.assert_array_equal(C.column_array(out, C.IMAGE).ravel(), img)
    np.testing.assert_allclose(C.wavelength(out), 5000 + np.arange(L))


def test_flat_images_need_image_shape(tmp_path):
    n = 3
    t = pa.table(
        {"id": range(n), "pix": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(n * 32, dtype=np.float32)), 32)}
    )
    pq.write_table(t, tmp_path / "flat.parquet")
    with pytest.raises(DataError, match="is flat; give image_shape"):
        FD.open_dataset(tmp_path / "flat.parquet", columns="object_id=id;image=pix")
    ds = FD.open_dataset(tmp_path / "flat.parquet", columns="object_id=id;image=pix", image_shape="2,4,4")
    assert C.column_array(_all(ds), C.IMAGE).shape == (3, 2, 4, 4)
    with pytest.raises(DataError, match="32 values per row, image_shape"):
        FD.open_dataset(tmp_path / "flat.parquet", columns="object_id=id;image=pix", image_shape="2,3,3")


def test_encoded_images_png_jpeg_npy_and_hf_struct(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (3, 6, 6, 3), dtype=np.uint8)
    gray = rng.integers(0, 255, (3, 6, 6), dtype=np.uint8)
    cube = rng.normal(size=(3, 4, 6, 6)).astype(np.float32)
    t = pa.table(
        {
            "id": [1, 2, 3],
            "col": pa.array([_png(x) for x in rgb], pa.binary()),
            "gray": pa.array([_png(x) for x in gray], pa.binary()),
            "cube": pa.array([_npy(x) for x in cube], pa.binary()),
            "hf": pa.StructArray.from_arrays(
                [pa.array([_png(x) for x in rgb], pa.binary()), pa.nulls(3, pa.string())], names=["bytes", "path"]
            ),
        }
    )
    pq.write_table(t, tmp_path / "enc.parquet")
    out = _all(FD.open_dataset(tmp_path / "enc.parquet", columns="object_id=id;image=cube;rgb=hf"))
    np.testing.assert_array_equal(C.column_array(out, C.IMAGE), cube)
    np.testing.assert_array_equal(C.column_array(out, C.RGB, np.uint8), rgb.transpose(0, 3, 1, 2))
    out = _all(FD.open_dataset(tmp_path / "enc.parquet", columns="object_id=id;image=col"))
    np.testing.assert_array_equal(C.column_array(out, C.IMAGE), rgb.transpose(0, 3, 1, 2))
    out = _all(FD.open_dataset(tmp_path / "enc.parquet", columns="object_id=id;image=gray"))
    assert C.column_array(out, C.IMAGE).shape == (3, 1, 6, 6)
    bad = pa.table({"id": [1], "col": pa.array([b"not an image"], pa.binary())})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"row 0 \(object_id=1\): field 'image': cannot decode image bytes"):
        FD.open_dataset(tmp_path / "bad.parquet", columns="object_id=id;image=col")


def test_hwc_layout_and_struct_paths(tmp_path):
    cube = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    spec = pa.StructArray.from_arrays(
        [
            pa.array([np.ones(L, np.float32)] * 2, pa.list_(pa.float32())),
            pa.array([np.full(L, 2.0, np.float32)] * 2, pa.list_(pa.float32())),
            pa.array([np.r_[np.ones(3), np.zeros(L - 3)].astype(np.int32)] * 2, pa.list_(pa.int32())),
        ],
        names=["f", "iv", "bits"],
    )
    pq.write_table(
        pa.table({"id": [1, 2], "im": pa.array([x.tolist() for x in cube]), "s": spec}), tmp_path / "hwc.parquet"
    )
    ds = FD.open_dataset(
        tmp_path / "hwc.parquet",
        image_layout="hwc",
        wavelength_start=3000,
        wavelength_step=1,
        columns="object_id=id;image=im;flux=s.f;ivar=s.iv;mask=s.bits",
    )
    out = _all(ds)
    np.testing.assert_array_equal(C.column_array(out, C.IMAGE), cube.transpose(0, 3, 1, 2))
    m = C.column_array(out, C.MASK, bool)
    assert m[:, :3].all() and not m[:, 3:].any()
    np.testing.assert_allclose(C.column_array(out, C.IVAR), 2.0)


@pytest.mark.parametrize("writer", ["feather", "stream"])
def test_arrow_ipc_files(tmp_path, writer):
    t, raw = user_table(n=7)
    path = tmp_path / "data.arrow"
    if writer == "feather":
        feather.write_feather(t, path, chunksize=3)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as w:
            for b in t.to_batches(max_chunksize=3):
                w.write_batch(b)
    ds = FD.open_dataset(
        path, columns="object_id=id;flux=spec_flux;error=spec_err", wavelength_start=1, wavelength_step=1
    )
    assert len(ds) == 7
    part = pa.Table.from_batches(list(ds.iter_batches(2, start=2, stop=6)))
    assert part.column(C.OBJECT_ID).to_pylist() == raw["id"][2:6].tolist()
    assert ds.modalities == ["spectrum"]


def test_folders_globs_and_cross_file_duplicates(tmp_path):
    for i in range(3):
        t, _ = user_table(n=4, seed=i)
        t = t.set_column(0, "id", pa.array(np.arange(4) + 100 * i))
        pq.write_table(t, tmp_path / f"part-{i}.parquet")
    cols = "object_id=id;flux=spec_flux;error=spec_err"
    ds = FD.open_dataset(tmp_path, columns=cols, wavelength_start=1, wavelength_step=1)
    assert len(ds) == 12 and [b.num_rows for b in ds.iter_batches(5)] == [5, 5, 2]
    assert (
        len(FD.open_dataset(str(tmp_path / "part-[01].parquet"), columns=cols, wavelength_start=1, wavelength_step=1))
        == 8
    )
    t, _ = user_table(n=4)
    pq.write_table(t.set_column(0, "id", pa.array([7, 8, 101, 9])), tmp_path / "part-3.parquet")
    with pytest.raises(
        DataError,
        match=r"part-3.parquet: row 2: duplicate object_id=101, already at "
        r"part-1.parquet row 1",
    ):
        _all(FD.open_dataset(tmp_path, columns=cols, wavelength_start=1, wavelength_step=1))


def test_missing_mapped_column_lists_available(tmp_path):
    t, _ = user_table()
    pq.write_table(t, tmp_path / "mine.parquet")
    with pytest.raises(DataError) as e:
        FD.open_dataset(tmp_path / "mine.parquet", columns="object_id=id;image=stamp")
    assert str(e.value).endswith("mine.parquet: missing column 'stamp' (columns: id, cutout, spec_flux, spec_err, z)")
    with pytest.raises(DataError, match="no 'object_id' mapping"):
        FD.open_dataset(tmp_path / "mine.parquet")
    with pytest.raises(DataError, match="needs an 'ivar' or 'error' column"):
        FD.open_dataset(tmp_path / "mine.parquet", columns="object_id=id;flux=spec_flux")
    with pytest.raises(DataError, match="need a wavelength column or wavelength_start"):
        FD.open_dataset(tmp_path / "mine.parquet", columns="object_id=id;flux=spec_flux;error=spec_err")


def test_bad_column_strings():
    with pytest.raises(ValueError, match="unknown canonical field 'fluxx'"):
        FD.parse_columns("object_id=id;fluxx=f")
    with pytest.raises(ValueError, match="expected canonical=source"):
        FD.parse_columns("object_id")
    assert FD.parse_columns("object_id=id; image = a, b ;") == {"object_id": ["id"], "image": ["a", "b"]}
    assert FD.as_list("[g, 'r',z]") == ["g", "r", "z"] and FD.as_list([4, 64]) == ["4", "64"]


def test_empty_unreadable_and_missing_files(tmp_path):
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.parquet: empty file"):
        FD.open_dataset(tmp_path / "empty.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"junk.parquet: unreadable parquet file \("):
        FD.open_dataset(tmp_path / "junk.parquet")
    (tmp_path / "junk.arrow").write_bytes(b"nor arrow" * 10)
    with pytest.raises(DataError, match=r"junk\.arrow: unreadable arrow file"):
        FD.open_dataset(tmp_path / "junk.arrow")
    t, _ = user_table()
    pq.write_table(t.slice(0, 0), tmp_path / "zero.parquet")
    with pytest.raises(DataError, match=r"zero.parquet: empty \(no rows\)"):
        FD.open_dataset(tmp_path / "zero.parquet", columns="object_id=id")
    with pytest.raises(DataError, match="no such file, folder or glob match"):
        FD.open_dataset(tmp_path / "nope" / "*.parquet")
    with pytest.raises(DataError, match="needs path="):
        FD.open_dataset()


def test_truncated_row_group_is_reported_with_the_file(tmp_path):
    t, _ = user_table(n=40)
    path = tmp_path / "t.parquet"
    pq.write_table(t, path, row_group_size=10)
    data = bytearray(path.read_bytes())
    md = pq.ParquetFile(path).metadata
    start = md.row_group(2).column(2).data_page_offset
    data[start : start + 64] = b"\xff" * 64  # corrupt a page, keep the footer
    path.write_bytes(bytes(data))
    ds = FD.open_dataset(
        path, columns="object_id=id;flux=spec_flux;error=spec_err", wavelength_start=1, wavelength_step=1, batch_rows=10
    )
    with pytest.raises(DataError, match=r"t.parquet: unreadable parquet data near row"):
        _all(ds)


def test_fingerprint_tracks_mapping_and_content(tmp_path):
    t, _ = user_table()
    pq.write_table(t, tmp_path / "a.parquet")
    opts = {"columns": "object_id=id;flux=spec_flux;error=spec_err", "wavelength_start": 1, "wavelength_step": 1}
    f1 = FD.open_dataset(tmp_path / "a.parquet", **opts).fingerprint
    assert f1 == FD.open_dataset(tmp_path / "a.parquet", **opts).fingerprint
    assert f1 != FD.open_dataset(tmp_path / "a.parquet", **{**opts, "wavelength_step": 2}).fingerprint
    t2, _ = user_table(seed=5)
    pq.write_table(t2, tmp_path / "a.parquet")
    assert f1 != FD.open_dataset(Path(tmp_path / "a.parquet"), **opts).fingerprint


def test_options_as_parsed_from_the_command_line(tmp_path):
    from fmb.params import parse_spec

    t, _ = user_table()
    pq.write_table(t, tmp_path / "mine.parquet")
    name, params = parse_spec(
        f"parquet:path={tmp_path / 'mine.parquet'},columns='object_id=id;image=cutout;"
        "flux=spec_flux;error=spec_err',image_bands=[g,r],wavelength_start=1,"
        "wavelength_step=0.5,batch_rows=2,pixel_scale=0.2"
    )
    ds = FD.open_dataset(**params)
    assert name == "parquet" and len(ds) == 5 and C.image_bands(ds.schema) == ["g", "r"]
    np.testing.assert_allclose(C.wavelength(_all(ds)), 1 + 0.5 * np.arange(L))
