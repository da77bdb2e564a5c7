"""Sky coordinates (optional canonical ra/dec), `fmb export`, the shared spectrum binning and optional extras."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from click.testing import CliRunner

from fmb import extras
from fmb.cli import cli
from fmb.errors import UsageError
from fmb.plots.object_card import REST_LINES, bin_spectrum
from fmb.testing.cli import fmb_run
from fmb.testing.survey_table import survey_table, write_table


def invoke(*args, code=0):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r.output


def sky_table(n=60, dec_bad_row=None):
    t = survey_table(n, 0, 6)
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-60, 80, n)
    if dec_bad_row is not None:
        dec[dec_bad_row] = 95.0
    return t.append_column("ra", pa.array(ra)).append_column("dec", pa.array(dec))


@pytest.fixture
def sky_run(tmp_path, fmb_home):
    t = sky_table()
    spec = write_table(t, tmp_path / "sky.parquet")
    fmb_run(tmp_path / "run", "--no-report", detector="knn", dataset=spec)
    return tmp_path / "run", t


def test_coordinates_reach_scores_and_every_export_format(sky_run, tmp_path):
    run, t = sky_run
    scores = pq.read_table(run / "scores.parquet").to_pandas()
    truth = dict(zip(t.column("object_id").to_pylist(), zip(t.column("ra").to_pylist(), t.column("dec").to_pylist())))
    assert scores["ra"].dtype == np.float64  # float64: no rounding of the positions
    for oid, ra, dec in scores[["object_id", "ra", "dec"]].itertuples(index=False):
        assert (ra, dec) == truth[oid]
    joint = scores[scores["modality"] == "joint"].sort_values("rank").head(7)
    for fmt, astropy_fmt in (("csv", "ascii.csv"), ("votable", "votable"), ("fits", "fits")):
        out = tmp_path / f"top.{fmt}"
        assert "wrote 7 objects (joint)" in invoke("export", run, "--top", 7, "--format", fmt, "--out", out)
        back = Table.read(out, format=astropy_fmt)
        assert list(back["object_id"]) == joint["object_id"].tolist()
        assert list(back["rank"]) == list(range(1, 8))
        np.testing.assert_array_equal(np.asarray(back["ra"], float), joint["ra"].to_numpy())
        np.testing.assert_allclose(np.asarray(back["score"], float), joint["score"].to_numpy())
        first = back[0]
        assert f"ra={first['ra']:.6f}&dec={first['dec']:.6f}" in str(first["legacy_viewer"])
        assert f"target={first['ra']:.6f}%20{first['dec']:+.6f}".replace("+", "%2B") in str(first["esasky"])
    assert str(Table.read(tmp_path / "top.fits")["ra"].unit) == "deg"
    assert "no modality 'nope'" in invoke("export", run, "--modality", "nope", "--out", tmp_path / "x.csv", code=2)


def test_coordinate_out_of_range_is_refused_naming_the_row(tmp_path, fmb_home):
    spec = write_table(sky_table(dec_bad_row=7), tmp_path / "bad.parquet")
    out = fmb_run(tmp_path / "r", "--no-report", detector="knn", dataset=spec, code=2).output
    assert "dec = 95.0 degrees is outside [-90, 90]" in out and "1007" in out


def test_bin_spectrum_is_the_ivar_weighted_mean_and_masks_empty_bins():
    wave = np.arange(12, dtype=float)
    flux = np.array([1, 3, 2, 2, 5, 5, 0, 0, 9, 1, 4, 4], float)
    ivar = np.array([1, 3, 1, 1, 2, 2, 1, 1, 1, 3, 1, 1], float)
    bad = np.zeros(12, bool)
    bad[6:8] = True  # a whole bin masked
    bad[0] = True
    _, f, sig, masked = bin_spectrum(wave, flux, ivar, bad, nbins=6)
    want = [3.0, 2.0, 5.0, np.nan, (9 * 1 + 1 * 3) / 4, 4.0]
    np.testing.assert_allclose(f, want)
    np.testing.assert_allclose(sig[[0, 4]], [1 / np.sqrt(3), 1 / np.sqrt(4)])
    assert masked.tolist() == [False, False, False, True, False, False]
    assert REST_LINES["Hα"] == pytest.approx(6564.61)  # vacuum (SDSS line table), the canonical grid's frame


def test_missing_extra_and_plugin_model_name_the_pip_command(monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "umap", ("no_such_module_xyz",))
    with pytest.raises(
        UsageError,
        match=r"needs the 'umap' extra \(no_such_module_xyz not installed\): "
        r"pip install 'fmb-core\[umap\]'",
    ):
        extras.require("umap", "--embedding-map umap")
    assert extras.status_note("umap") == " (NOT INSTALLED: pip install 'fmb-core[umap]')"
    monkeypatch.setitem(extras.PLUGIN_PACKAGES, "nosuchmodel", "fmb-nosuchmodel")
    from fmb.plugins import registry

    with pytest.raises(LookupError, match="pip install fmb-nosuchmodel"):
        registry().get("model", "nosuchmodel")


def test_umap_map_without_umap_is_one_line_exit_2(sky_run, monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "umap", ("no_such_module_xyz",))
    run, _ = sky_run
    out = invoke("report", run, "--embedding-map", "umap", code=2)
    assert out.strip() == (
        "Error: --embedding-map umap needs the 'umap' extra (no_such_module_xyz not installed): "
        "pip install 'fmb-core[umap]'"
    )
