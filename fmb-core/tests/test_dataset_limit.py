"""``limit=N`` on the file data sets (``parquet``, ``euclid-desi``): the first N objects in file order."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import UsageError
from fmb.params import as_limit
from fmb.plugins import registry
from fmb.protocol.run import open_dataset
from fmb.testing.survey_table import GRID_OPTIONS, survey_table, write_table


def _ids(ds):
    return pa.Table.from_batches(list(ds.iter_batches(64))).column("object_id").to_pylist()


def test_parquet_limit_reads_first_rows_in_file_order_and_records_it(tmp_path):
    t = survey_table(50, seed=1, n_anom=5, size=8, npix=64)
    path = tmp_path / "s.parquet"
    pq.write_table(t, path, row_group_size=7)  # the limit falls inside a row group
    opts = {"path": str(path), "wavelength_start": 3600, "wavelength_step": 0.8}
    full = open_dataset(registry(), "parquet", opts)
    cut = open_dataset(registry(), "parquet", {**opts, "limit": "10"})
    assert len(cut) == 10
    assert _ids(cut) == t.column("object_id").to_pylist()[:10]
    assert cut.options()["limit"] == 10 and "limit" not in full.options()
    assert cut.fingerprint != full.fingerprint


def test_limit_spans_files_in_order(tmp_path):
    t = survey_table(30, seed=2, n_anom=3, size=8, npix=64)
    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(t.slice(0, 12), folder / "a.parquet")
    pq.write_table(t.slice(12), folder / "b.parquet")
    ds = open_dataset(
        registry(), "parquet", {"path": str(folder), "wavelength_start": 3600, "wavelength_step": 0.8, "limit": 20}
    )
    assert _ids(ds) == t.column("object_id").to_pylist()[:20]
    assert ds.locate(19) == ("b.parquet", 7)


@pytest.mark.parametrize("bad", [0, -3, "0", "ten", 2.5, True])
def test_bad_limit_is_a_one_line_usage_error(bad):
    with pytest.raises(UsageError) as exc:
        as_limit(bad)
    assert "limit" in str(exc.value) and "\n" not in str(exc.value)


def test_limit_is_a_declared_option_of_both_file_datasets():
    reg = registry()
    for name in ("parquet", "euclid-desi"):
        reg.check_dataset_options(name, {"limit": 5})  # known: no error
        with pytest.raises(UsageError, match="limit"):
            reg.check_dataset_options(name, {"limt": 5})  # the suggestion names the real option


def test_run_with_limit_scores_that_many_objects(tmp_path):
    spec = write_table(survey_table(50, seed=3, n_anom=6, size=16, npix=64), tmp_path / "s.parquet")
    out = tmp_path / "run"
    args = ["run", "--model", "baseline", "--detector", "iforest", "--dataset", f"{spec},limit=10"]
    r = CliRunner().invoke(cli, [*args, "--output", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"]["size"] == 10 and res["dataset"]["options"]["limit"] == 10
    assert pq.read_table(out / "scores.parquet").column("object_id").unique().to_pylist() == list(range(1000, 1010))


def test_cli_limit_zero_is_one_line(tmp_path):
    spec = write_table(survey_table(20, seed=4, n_anom=2, size=8, npix=64), tmp_path / "s.parquet")
    args = ["run", "--model", "baseline", "--detector", "iforest", "--dataset", f"{spec},limit=0", "-q"]
    r = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "o")])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "limit" in lines[0], r.output
    assert GRID_OPTIONS in spec


def test_bootstrap_with_a_single_anomaly_gives_no_interval_instead_of_failing():
    # a limited run can hold one anomaly: AUROC is defined, its stratified bootstrap interval is not
    from fmb.protocol.metrics import bootstrap_intervals

    y = [False] * 9 + [True]
    out = bootstrap_intervals([float(i) for i in range(10)], y, n_resamples=50, seed=0)
    assert out["auroc_ci"] is None and out["average_precision_stderr"] is None
    two = bootstrap_intervals([float(i) for i in range(10)], [False] * 8 + [True] * 2, n_resamples=50, seed=0)
    assert two["auroc_ci"] == [1.0, 1.0]
