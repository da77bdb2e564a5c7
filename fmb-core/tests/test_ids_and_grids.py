"""Data that is physically the same gives the same result; one id validation on every path.

Inputs are built here with fmb.testing.survey_table (no shared files): float/uint64/text ids,
duplicates far apart (rows 3 and 1050 of 1,100), red-to-blue and non-monotonic wavelength grids,
leading null spectra, channels-last stamps, and a NaN stamp next to the object shown.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.data import canonical as C
from fmb.errors import DataError
from fmb.params import parse_spec
from fmb.plugins import registry
from fmb.protocol.run import open_dataset
from fmb.testing.cli import fmb_run
from fmb.testing.survey_table import GRID_OPTIONS, survey_table, write_table

F32 = pa.list_(pa.float32())
SMALL = {"size": 16, "npix": 32}


def _open(spec):
    name, options = parse_spec(spec, "dataset")
    return open_dataset(registry(), name, options)


def _all(ds, column):
    return np.concatenate([C.column_array(b, column) for b in ds.iter_batches(64)])


def _run(spec, out, *extra, modality="image"):
    r = fmb_run(out, "--modality", modality, "--no-report", *extra, dataset=spec, code=None)
    return r


def _scores(out):
    t = pq.read_table(out / "scores.parquet")
    return dict(zip(t.column("object_id").to_pylist(), t.column("score").to_pylist()))


# ----------------------------------------------------------------------------- ids


def test_duplicate_ids_finds_the_earliest_repeat():
    rng = np.random.default_rng(1)
    ids = rng.permutation(5000)
    ids[[4000, 4500]] = ids[[10, 700]]
    first, second = C.duplicate_ids(pa.array(ids))
    # brute force: the first row whose id was seen before, and where it was seen
    seen, expect = {}, None
    for i, v in enumerate(ids.tolist()):
        if v in seen:
            expect = (seen[v], i)
            break
        seen[v] = i
    assert (first, second) == expect == (10, 4000)
    assert C.duplicate_ids(pa.array(["a", "b", "c"])) is None
    assert C.duplicate_ids(pa.array(["x", "b", "x"])) == (0, 2)


def test_integral_float_ids_become_int64_and_are_counted(tmp_path):
    t = survey_table(40, n_anom=2, **SMALL)
    ids = (2**52 + 7 + np.arange(40)).astype(np.float64)  # integral, exact in float64
    ds = _open(write_table(t.set_column(0, "object_id", pa.array(ids)), tmp_path / "f.parquet"))
    assert ds.schema.field("object_id").type == pa.int64()
    got = np.concatenate([b.column("object_id").to_numpy() for b in ds.iter_batches(16)])
    assert got.tolist() == [2**52 + 7 + i for i in range(40)]
    assert ds.repairs.counts[C.ID_FLOAT_REPAIR] == 40


@pytest.mark.parametrize(
    "bad, why",
    [(39627835577647001.0, "beyond 2\\*\\*53"), (12.5, "not an integer"), (float("nan"), "beyond 2\\*\\*53")],
)
def test_other_float_ids_are_a_one_line_error(tmp_path, bad, why):
    """cases/r01: DESI TARGETIDs read as float64 were silently turned into text."""
    t = survey_table(30, n_anom=2, **SMALL)
    ids = np.arange(30, dtype=np.float64)
    ids[17] = bad
    spec = write_table(t.set_column(0, "object_id", pa.array(ids)), tmp_path / "floatid.parquet")
    with pytest.raises(DataError, match=rf"^floatid.parquet: row 17: field 'object_id': double id .* {why}") as e:
        _open(spec)
    assert "\n" not in str(e.value)


def test_uint64_ids_above_int64_are_refused_naming_file_and_field(tmp_path):
    t = survey_table(20, n_anom=2, **SMALL)
    ids = np.uint64(2**63) + np.arange(20, dtype=np.uint64)
    spec = write_table(t.set_column(0, "object_id", pa.array(ids)), tmp_path / "uint64.parquet")
    r = _run(spec, tmp_path / "out")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        "Error: uint64.parquet: row 0: field 'object_id': uint64 id 9223372036854775808 is above 2**63 - 1, "
        "the int64 limit; store ids as strings"
    )


def test_uint64_ids_within_int64_are_read(tmp_path):
    t = survey_table(20, n_anom=2, **SMALL)
    ids = pa.array(np.arange(5, 25, dtype=np.uint64))
    spec = write_table(t.set_column(0, "object_id", ids), tmp_path / "u.parquet")
    ds = _open(spec)
    assert ds.schema.field("object_id").type == pa.int64()
    assert next(ds.iter_batches(20)).column("object_id").to_pylist() == list(range(5, 25))


def test_one_id_type_per_data_set_across_files(tmp_path):
    t = survey_table(20, n_anom=2, **SMALL)
    (tmp_path / "d").mkdir()
    pq.write_table(t.slice(0, 10), tmp_path / "d" / "a.parquet")
    text = t.slice(10).set_column(0, "object_id", pa.array([str(i) for i in range(1010, 1020)]))
    pq.write_table(text, tmp_path / "d" / "b.parquet")
    ds = _open(f"parquet:path={tmp_path / 'd'},{GRID_OPTIONS}")
    assert ds.schema.field("object_id").type == pa.string()
    ids = [v for b in ds.iter_batches(7) for v in b.column("object_id").to_pylist()]
    assert ids == [str(i) for i in range(1000, 1020)]
    # int 1000 in one file and "1000" in the other are the same object
    dup = t.slice(10).set_column(0, "object_id", pa.array(["1000"] + [str(i) for i in range(1011, 1020)]))
    pq.write_table(dup, tmp_path / "d" / "b.parquet")
    with pytest.raises(DataError, match=r"^b.parquet: row 0: duplicate object_id=1000, already at a.parquet row 0$"):
        _open(f"parquet:path={tmp_path / 'd'},{GRID_OPTIONS}")


def test_compare_joins_int_and_text_id_runs(tmp_path):
    """cases/r12: compare of the same objects stored with int and with text ids crashed."""
    t = survey_table(60, n_anom=4, **SMALL)
    a = write_table(t, tmp_path / "intid.parquet")
    b = write_table(
        t.set_column(0, "object_id", pa.array([str(i) for i in range(1000, 1060)])), tmp_path / "strid.parquet"
    )
    for spec, out in ((a, "ri"), (b, "rs")):
        assert _run(spec, tmp_path / out).exit_code == 0
    assert list(_scores(tmp_path / "ri").values()) == list(_scores(tmp_path / "rs").values())
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "ri"), str(tmp_path / "rs"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "60 common objects" in r.output
    pairs = pq.read_table(tmp_path / "c" / "pairs.parquet").to_pylist()
    assert pairs and all(p["spearman"] == pytest.approx(1.0) for p in pairs)


# ----------------------------------------------------------------------------- duplicates on every path


@pytest.fixture
def dup1100(tmp_path):
    t = survey_table(1100, n_anom=5, size=16, npix=8)
    ids = np.arange(1000, 2100)
    ids[1050] = ids[3]
    return write_table(t.set_column(0, "object_id", pa.array(ids)), tmp_path / "dup.parquet")


MSG = "Error: dup.parquet: row 1050: duplicate object_id=1003, already at dup.parquet row 3"


@pytest.mark.parametrize("extra", [(), ("--shards", "2"), ("--shard-size", "256")])
def test_duplicate_far_apart_is_refused_by_run(dup1100, tmp_path, extra):
    r = _run(dup1100, tmp_path / "out", *extra)
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == MSG
    assert not (tmp_path / "out" / "scores.parquet").exists()


@pytest.mark.parametrize("shard", ["0/2", "1/2"])
def test_duplicate_far_apart_is_refused_by_embed_shard_and_detect(dup1100, tmp_path, shard):
    args = ["--model", "baseline", "--dataset", dup1100, "-q"]
    r = CliRunner().invoke(cli, ["embed", *args, "--shard", shard])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == MSG
    r = CliRunner().invoke(cli, ["detect", *args, "--detector", "iforest", "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == MSG


# ----------------------------------------------------------------------------- wavelength grids


def _reversed(t):
    for name in ("flux", "error"):
        a = np.array(t.column(name).to_pylist(), np.float32)[:, ::-1]
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(a.tolist(), F32))
    return t


def test_red_to_blue_spectra_give_the_same_scores(tmp_path):
    t = survey_table(60, n_anom=4, **SMALL)
    npix = SMALL["npix"]
    wave = 3600 + 0.8 * np.arange(npix)
    asc = write_table(t, tmp_path / "asc.parquet")
    rev = _reversed(t)
    pq.write_table(rev, tmp_path / "rev.parquet")
    by_step = f"parquet:path={tmp_path / 'rev.parquet'},wavelength_start={wave[-1]},wavelength_step=-0.8"
    col = rev.append_column("wavelength", pa.array([wave[::-1].tolist()] * 60, pa.list_(pa.float64())))
    pq.write_table(col, tmp_path / "revw.parquet")
    by_column = f"parquet:path={tmp_path / 'revw.parquet'}"
    per_row = f"parquet:path={tmp_path / 'revw.parquet'},wavelength=column"
    want = _all(_open(asc), "flux")
    for spec in (by_step, by_column, per_row):
        ds = _open(spec)
        assert np.array_equal(_all(ds, "flux"), want)
        assert ds.repairs.counts["spectrum_grid_reversed"] == 60
        grid = np.concatenate([np.broadcast_to(C.wavelength(b), (b.num_rows, npix)) for b in ds.iter_batches(64)])
        assert np.allclose(grid, wave, atol=1e-3)
    assert _run(asc, tmp_path / "a", modality="spectrum").exit_code == 0
    assert _run(by_step, tmp_path / "b", modality="spectrum").exit_code == 0
    assert _scores(tmp_path / "a") == _scores(tmp_path / "b")


@pytest.mark.parametrize("mode", ["", ",wavelength=column"])
def test_non_monotonic_grid_is_a_one_line_error(tmp_path, mode):
    t = survey_table(30, n_anom=2, **SMALL)
    wave = 3600 + 0.8 * np.arange(SMALL["npix"])
    bad = wave.copy()
    bad[[10, 11]] = bad[[11, 10]]
    rows = [wave.tolist()] * 30
    rows[5] = bad.tolist()
    pq.write_table(t.append_column("wavelength", pa.array(rows, pa.list_(pa.float64()))), tmp_path / "nm.parquet")
    with pytest.raises(
        DataError,
        match=r"^nm.parquet: row 5 \(object_id=1005\): field 'wavelength' is not "
        r"monotonic \(pixel 11: 3608.8 then 3608\)$",
    ):
        next(_open(f"parquet:path={tmp_path / 'nm.parquet'}{mode}").iter_batches(30))


@pytest.mark.parametrize("leading", [10, 16, 40])
def test_leading_null_spectra_do_not_decide_the_grid(tmp_path, leading):
    t = survey_table(60, n_anom=4, **SMALL)
    flux = t.column("flux").to_pylist()
    flux[:leading] = [None] * leading
    spec = write_table(t.set_column(2, "flux", pa.array(flux, F32)), tmp_path / "nulls.parquet")
    ds = _open(spec)
    f = _all(ds, "flux")
    assert f.shape == (60, SMALL["npix"])
    assert np.array_equal(f[leading:], np.array(t.column("flux").to_pylist()[leading:], np.float32))
    assert ds.repairs.counts["spectrum_missing"] == leading
    assert _run(spec, tmp_path / "o", modality="spectrum").exit_code == 0
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    assert result["modalities"]["spectrum"]["n_scored"] == 60 - leading


# ----------------------------------------------------------------------------- image layout, show


def test_channels_last_stamps_are_detected(tmp_path):
    """cases/r07: [H, W, C] stamps were read as 32 bands of 32x4 pixels."""
    t = survey_table(30, n_anom=2, **SMALL)
    img = np.array(t.column("image").to_pylist(), np.float32)
    hwc = t.set_column(1, "image", pa.array(img.transpose(0, 2, 3, 1).tolist(), t.schema.field("image").type))
    chw_ds, hwc_ds = _open(write_table(t, tmp_path / "chw.parquet")), _open(write_table(hwc, tmp_path / "hwc.parquet"))
    assert C.field_shape(hwc_ds.schema.field("image")) == (4, 16, 16)
    assert np.array_equal(_all(hwc_ds, "image"), _all(chw_ds, "image"))
    assert np.array_equal(_all(hwc_ds, "image"), img)


def test_ambiguous_stamps_ask_for_image_layout(tmp_path):
    t = survey_table(10, n_anom=1, size=16, npix=8)
    cube = np.zeros((10, 16, 16, 16), np.float32).tolist()
    cube = pa.array(cube, t.schema.field("image").type)
    spec = write_table(t.set_column(1, "image", cube), tmp_path / "cube.parquet")
    with pytest.raises(
        DataError,
        match=r"^cube.parquet: field 'image' \('image'\): stamps of shape \(16, 16, 16\) "
        r"could be bands-first or bands-last; give image_layout=chw or "
        r"image_layout=hwc$",
    ):
        _open(spec)
    assert C.field_shape(_open(spec + ",image_layout=hwc").schema.field("image")) == (16, 16, 16)


def test_show_is_not_stopped_by_a_nan_in_another_object(tmp_path):
    """cases/r03: one NaN stamp at row 250 made `fmb show` fail for every object."""
    t = survey_table(300, n_anom=5, size=16, npix=8)
    img = np.array(t.column("image").to_pylist(), np.float32)
    img[250, 2, :, :6] = np.nan
    spec = write_table(
        t.set_column(1, "image", pa.array(img.tolist(), t.schema.field("image").type)), tmp_path / "nanedge.parquet"
    )
    for how in (["--index", "3"], ["--index", "260"], ["--object-id", "1251"]):
        out = tmp_path / f"{how[1]}.png"
        r = CliRunner().invoke(cli, ["show", spec, *how, "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 1000
    r = CliRunner().invoke(cli, ["show", spec, "--index", "250", "--out", str(tmp_path / "bad.png")])
    assert r.exit_code == 2
    assert r.output.strip() == "Error: nanedge.parquet: row 250 (object_id=1250): field 'image': 96 non-finite pixels"
