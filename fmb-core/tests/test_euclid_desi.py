"""The euclid-desi loader on look-alikes of the real HF data set (save_to_disk, Parquet, HF cache)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fmb.data import canonical as C
from fmb.data.canonical import DataError
from fmb.datasets import euclid_desi as E

sys.path.insert(0, str(Path(__file__).parent))  # pytest runs with --import-mode=importlib
import fixtures_realdata as F

datasets = pytest.importorskip("datasets")

ZP = np.array([2835.34, 1916.10, 1370.25, 918.35], np.float32) / 3631.0


@pytest.fixture(scope="module")
def disk_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disk")
    F.save_disk(root, "test", n=10, h=32, seed=1)
    F.save_disk(root, "train", n=7, h=32, seed=2, id_offset=100)
    return root


@pytest.fixture(scope="module")
def parquet_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pq")
    F.save_parquet(root / "data" / "test-00000-of-00001.parquet", n=10, h=32, seed=1)
    F.save_parquet(root / "data" / "train-00000-of-00001.parquet", n=7, h=32, seed=2, id_offset=100)
    return root


def _all(ds, batch_size=4) -> pa.Table:
    return pa.Table.from_batches(list(ds.iter_batches(batch_size)))


def test_save_to_disk_layout_converts_to_canonical(disk_root):
    ds = E.open_dataset(disk_root, split="test", batch_rows=4)
    raw = F.lookalike_columns(10, 32, seed=1)
    assert ds.name == "euclid-desi" and len(ds) == 10 and ds.options()["source"] == "disk"
    assert ds.modalities == ["image", "spectrum"] and ds.has_labels
    t = _all(ds, 3)
    assert t.column(C.OBJECT_ID).to_pylist() == raw["object_id"]
    img = C.column_array(t, C.IMAGE)
    assert img.shape == (10, 4, 32, 32)
    stored = np.stack([raw[b] for b in F.BAND_COLUMNS], axis=1)
    np.testing.assert_allclose(img, stored * ZP[None, :, None, None], rtol=1e-6)
    np.testing.assert_array_equal(C.column_array(t, C.RGB, np.uint8), raw["RGB_image"].transpose(0, 3, 1, 2))
    np.testing.assert_allclose(C.column_array(t, C.IVAR), 100.0, rtol=1e-5)
    assert not C.column_array(t, C.MASK, bool).any()
    np.testing.assert_allclose(C.wavelength(t), F.WAVE, atol=1e-3)
    assert C.WAVELENGTH not in t.schema.names
    fld = t.schema.field(C.IMAGE)
    assert C.field_meta(fld, "bands") == "VIS,Y,J,H" and C.field_meta(fld, "unit") == "nanomaggies"
    assert float(C.field_meta(fld, "pixel_scale")) == 0.1
    assert t.column(C.ANOMALY_CLASS).to_pylist()[:4] == ["normal", "ring", "normal", "blue_blob"]
    assert t.column(C.IS_ANOMALY).to_pylist()[:2] == [False, True]
    assert t.schema.field("redshift").type == pa.float32()
    assert ds.repairs.counts == {}


def test_disk_reader_does_not_need_datasets(disk_root):
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "from fmb.datasets.euclid_desi import open_dataset\n"
        f"ds = open_dataset({str(disk_root)!r}, split='test')\n"
        "print(len(ds), sum(b.num_rows for b in ds.iter_batches(4)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["10", "10"]


def test_parquet_layout_and_split_selection(parquet_root, disk_root):
    ds = E.open_dataset(parquet_root, split="test")
    assert ds.options()["source"] == "parquet" and len(ds) == 10
    by_disk = _all(E.open_dataset(disk_root, split="test"))
    assert _all(ds).equals(by_disk)
    both = E.open_dataset(parquet_root, split="all")
    assert len(both) == 17
    assert E.open_dataset(str(parquet_root / "data" / "train-*.parquet")).__len__() == 7
    with pytest.raises(DataError, match="no Parquet files for split 'validation'"):
        E.open_dataset(parquet_root, split="validation")


def test_units_raw_and_rgb_off(disk_root):
    ds = E.open_dataset(disk_root, split="test", units="raw", rgb="false")
    t = _all(ds)
    raw = F.lookalike_columns(10, 32, seed=1)
    np.testing.assert_array_equal(C.column_array(t, C.IMAGE)[:, 0], raw["VIS_image"])
    assert C.RGB not in t.schema.names and C.field_meta(t.schema.field(C.IMAGE), "unit") == "adu"
    assert ds.fingerprint != E.open_dataset(disk_root, split="test").fingerprint


def test_streaming_ranges_and_batch_sizes(tmp_path):
    path = F.write_parquet(F.lookalike_table(n=11, h=8), tmp_path / "test.parquet", row_group_size=3)
    ds = E.open_dataset(path, batch_rows=4)
    sizes = [b.num_rows for b in ds.iter_batches(5)]
    assert sizes == [5, 5, 1]
    ids = F.lookalike_columns(11, 8)["object_id"]
    part = pa.Table.from_batches(list(ds.iter_batches(2, start=3, stop=8)))
    assert part.column(C.OBJECT_ID).to_pylist() == ids[3:8]
    assert list(ds.iter_batches(2, start=5, stop=5)) == []


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    a = F.write_parquet(F.lookalike_table(n=6, h=8, seed=1), tmp_path / "a" / "test.parquet")
    b = F.write_parquet(F.lookalike_table(n=6, h=8, seed=2), tmp_path / "b" / "test.parquet")
    fa = E.open_dataset(a).fingerprint
    assert fa == E.open_dataset(a).fingerprint and len(fa) == 64
    assert fa != E.open_dataset(b).fingerprint
    assert fa != E.open_dataset(a, wavelength="column").fingerprint
    moved = tmp_path / "elsewhere" / "test.parquet"
    moved.parent.mkdir()
    moved.write_bytes(a.read_bytes())
    assert E.open_dataset(moved, batch_rows=7).fingerprint == fa


def test_object_id_falls_back_to_targetid(tmp_path):
    t = F.lookalike_table(n=4, h=8)
    t = t.set_column(0, "object_id", pa.array([None, -5, None, -7], pa.int64()))
    ds = E.open_dataset(F.write_parquet(t, tmp_path / "test.parquet"))
    assert _all(ds).column(C.OBJECT_ID).to_pylist() == [39633000000000000, -5, 39633000000000002, -7]
    s = F.lookalike_table(n=3, h=8).set_column(0, "object_id", pa.array(["EUC_1", None, "EUC_3"]))
    ds = E.open_dataset(F.write_parquet(s, tmp_path / "s" / "test.parquet"))
    assert _all(ds).column(C.OBJECT_ID).to_pylist() == ["EUC_1", "39633000000000001", "EUC_3"]


def test_non_desi_grid_gives_a_wavelength_column(tmp_path):
    c = F.lookalike_columns(4, 8, npix=50)
    c["spectrum"]["wavelength"] = np.tile(np.geomspace(4000, 9000, 50).astype(np.float32), (4, 1))
    table = F.lookalike_table(4, 8, columns=c, npix=50)
    ds = E.open_dataset(F.write_parquet(table, tmp_path / "test.parquet"))
    t = _all(ds)
    assert C.WAVELENGTH in t.schema.names and C.wavelength(t).shape == (4, 50)


def test_grid_that_changes_later_is_an_error(tmp_path):
    c = F.lookalike_columns(20, 8)  # the grid is probed on the first rows, then checked per batch
    c["spectrum"]["wavelength"][18] += 5.0
    ds = E.open_dataset(F.write_parquet(F.lookalike_table(20, 8, columns=c), tmp_path / "test.parquet"))
    assert C.WAVELENGTH not in ds.schema.names
    with pytest.raises(DataError, match=r"row 18 \(object_id=-600000000000000018\).*wavelength=column"):
        _all(ds)
    ok = E.open_dataset(tmp_path / "test.parquet", wavelength="column")
    assert C.wavelength(_all(ok)).shape == (20, 7781)


# ----------------------------------------------------------------------------- bad inputs


def test_missing_column_names_file_and_lists_columns(tmp_path):
    path = F.write_parquet(F.lookalike_table(4, 8).drop_columns(["NISP_J_image"]), tmp_path / "test.parquet")
    with pytest.raises(DataError) as e:
        E.open_dataset(path)
    msg = str(e.value)
    assert "test.parquet" in msg and "missing column 'NISP_J_image'" in msg and "VIS_image" in msg
    assert "\n" not in msg


def test_wrong_image_shape(tmp_path):
    c = F.lookalike_columns(4, 8)
    c["NISP_H_image"] = np.ones((4, 6, 6), np.float32)
    path = F.write_parquet(F.lookalike_table(4, 8, columns=c), tmp_path / "test.parquet")
    with pytest.raises(DataError, match=r"'NISP_H_image': band shape \(6, 6\) differs from 'VIS_image'"):
        E.open_dataset(path)
    later = F.lookalike_table(20, 8)  # past the rows probed for the schema
    bad = F.lookalike_table(2, 6, seed=3, id_offset=50)
    path = F.write_parquet(pa.concat_tables([later, bad]), tmp_path / "later" / "test.parquet")
    with pytest.raises(DataError, match=r"row 20 \(object_id=-600000000000000050\): field 'VIS_image' is"):
        _all(E.open_dataset(path))
    with pytest.raises(DataError, match=r"field 'image': shape \(4, 6, 6\), expected \(4, 8, 8\)"):
        _all(E.open_dataset(path, batch_rows=10))


def test_ragged_spectrum(tmp_path):
    t = F.lookalike_table(4, 8)
    spec = t.column("spectrum").combine_chunks()
    flux = spec.field("flux").to_pylist()
    flux[2] = flux[2][:-3]
    new = pa.StructArray.from_arrays(
        [spec.field("wavelength"), pa.array(flux, pa.list_(pa.float32())), spec.field("error")],
        names=["wavelength", "flux", "error"],
    )
    path = F.write_parquet(
        t.set_column(t.schema.get_field_index("spectrum"), "spectrum", new), tmp_path / "test.parquet"
    )
    with pytest.raises(DataError, match=r"row 2 \(object_id=-600000000000000002\): field 'flux' is ragged"):
        _all(E.open_dataset(path))


def test_nan_in_image_is_an_error(tmp_path):
    c = F.lookalike_columns(5, 8)
    c["NISP_Y_image"][3, 0, :2] = np.nan
    path = F.write_parquet(F.lookalike_table(5, 8, columns=c), tmp_path / "test.parquet")
    with pytest.raises(DataError) as e:
        _all(E.open_dataset(path))
    assert str(e.value) == ("test.parquet: row 3 (object_id=-600000000000000003): field 'image': 2 non-finite pixels")


def test_nan_in_spectrum_and_bad_errors_are_counted_repairs(tmp_path):
    c = F.lookalike_columns(5, 8)
    c["spectrum"]["flux"][1, :4] = np.nan
    c["spectrum"]["error"][2, :3] = [0.0, -1.0, np.inf]
    c["spectrum"]["error"][3, 7] = 1e-30  # 1/err^2 overflows float32: masked, never an infinite ivar
    c["spectrum"]["error"][4, :] = 0.0  # nothing usable: an empty spectrum, the image is kept
    path = F.write_parquet(F.lookalike_table(5, 8, columns=c), tmp_path / "test.parquet")
    ds = E.open_dataset(path)
    t = _all(ds)
    ivar, mask = C.column_array(t, C.IVAR), C.column_array(t, C.MASK, bool)
    assert np.isfinite(ivar).all() and np.isfinite(C.column_array(t, C.FLUX)).all()
    assert mask[1, :4].all() and mask[2, :3].all() and mask[3, 7] and mask[4].all()
    assert (ivar[2, :3] == 0).all() and ivar[3, 7] == 0
    assert ds.repairs.counts == {
        "spectrum_invalid_error_masked": 4 + 7781,
        "spectrum_nonfinite_pixels_masked": 4,
        "spectrum_empty": 1,
    }
    _all(ds)  # a second pass does not count again
    assert ds.repairs.counts["spectrum_nonfinite_pixels_masked"] == 4
    assert t.num_rows == 5


def test_duplicate_object_id(tmp_path):
    t = F.lookalike_table(6, 8).set_column(0, "object_id", pa.array([1, 2, 3, 4, 2, 6], pa.int64()))
    with pytest.raises(DataError, match=r"duplicate object_id=2, already at test.parquet row 1"):
        _all(E.open_dataset(F.write_parquet(t, tmp_path / "test.parquet"), batch_rows=3))


def test_empty_and_corrupt_files(tmp_path):
    empty = tmp_path / "empty" / "test.parquet"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty/test.parquet: empty file"):
        E.open_dataset(empty)
    zero = F.write_parquet(F.lookalike_table(2, 8).slice(0, 0), tmp_path / "zero" / "test.parquet")
    with pytest.raises(DataError, match=r"zero/test.parquet: empty \(no rows\)"):
        E.open_dataset(zero)
    good = F.write_parquet(F.lookalike_table(4, 8), tmp_path / "good.parquet")
    cut = tmp_path / "cut" / "test.parquet"
    cut.parent.mkdir()
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut/test.parquet: unreadable parquet file"):
        E.open_dataset(cut)


def test_bad_options():
    with pytest.raises(ValueError, match="units"):
        E.open_dataset("x", units="jansky")
    with pytest.raises(ValueError, match="source"):
        E.open_dataset("x", source="ftp")


# ----------------------------------------------------------------------------- the hub (offline)


def _seed_cache(cache: Path, parquet: Path) -> Path:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"datasets--{F.REPO.replace('/', '--')}"
    snap = repo / "snapshots" / commit / "data"
    snap.mkdir(parents=True)
    (snap / "test-00000-of-00001.parquet").write_bytes(parquet.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap / "test-00000-of-00001.parquet"


def test_offline_hub_cache_is_found_through_huggingface_hub(tmp_path, parquet_root, monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    cache = tmp_path / "hf" / "hub"
    seeded = _seed_cache(cache, parquet_root / "data" / "test-00000-of-00001.parquet")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert try_to_load_from_cache(
        F.REPO, "data/test-00000-of-00001.parquet", cache_dir=str(cache), repo_type="dataset"
    ) == str(seeded)
    ds = E.open_dataset(split="test")
    assert ds.options()["source"] == "hub" and len(ds) == 10
    assert [str(p) for p in ds.options()["files"]] == [str(seeded)]
    with pytest.raises(DataError, match="no Parquet files for split 'train' in the cached snapshot"):
        E.open_dataset(split="train")


def test_offline_without_cache_fails_fast_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        E.open_dataset(split="test")
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE=1" in msg and "path=" in msg and F.REPO in msg


def test_options_as_parsed_from_the_command_line(parquet_root):
    from fmb.params import parse_spec

    _, params = parse_spec(f"euclid-desi:path={parquet_root},split='train,test',rgb=false,units=raw,batch_rows=3")
    ds = E.open_dataset(**params)
    assert len(ds) == 17 and C.RGB not in ds.schema.names
    assert ds.options()["split"] == "train,test" and ds.options()["rgb"] is False


def test_load_dataset_cache_folder(tmp_path, parquet_root, monkeypatch):
    """Upstream's fallback layout: the Arrow cache written by datasets.load_dataset."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cache = tmp_path / "hf_datasets"
    datasets.load_dataset(
        "parquet",
        data_files={"test": str(parquet_root / "data" / "test-*.parquet")},
        split="test",
        cache_dir=str(cache),
    )
    ds = E.open_dataset(cache, split="test")
    assert ds.options()["source"] == "arrow" and len(ds) == 10
    assert _all(ds).equals(_all(E.open_dataset(parquet_root, split="test")))


def test_read_columns_reads_only_ids_and_labels(parquet_root, monkeypatch):
    ds = E.open_dataset(parquet_root, split="test")
    full = _all(ds).select([C.OBJECT_ID, C.IS_ANOMALY, C.ANOMALY_CLASS])
    from fmb.datasets.files import columns as FD  # where images are decoded

    def no_images(*a, **k):
        raise AssertionError("images decoded")

    monkeypatch.setattr(FD, "_image_array", no_images)
    cols = ds.read_columns([C.OBJECT_ID, C.IS_ANOMALY, C.ANOMALY_CLASS])
    assert cols.equals(full)
