"""fmb.threads: the thread count comes from the override, FMB_THREADS or the CPUs, and caps BLAS pools."""

import pytest
from threadpoolctl import threadpool_info

from fmb.errors import UsageError
from fmb.threads import available_cpus, limited, n_threads


def test_thread_count_precedence(monkeypatch):
    monkeypatch.delenv("FMB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert n_threads() == available_cpus()
    monkeypatch.setenv("OMP_NUM_THREADS", "1,4")  # a nested OpenMP list: its first level
    assert n_threads() == 1
    monkeypatch.setenv("FMB_THREADS", "3")
    assert n_threads() == 3 and n_threads(5) == 5


def test_bad_omp_num_threads_is_one_line_error_naming_it(monkeypatch):
    monkeypatch.delenv("FMB_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "all")
    with pytest.raises(UsageError, match="OMP_NUM_THREADS must be a positive integer, got 'all'"):
        n_threads()


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_fmb_threads_is_one_line_error(monkeypatch, bad):
    monkeypatch.setenv("FMB_THREADS", bad)
    with pytest.raises(UsageError, match="FMB_THREADS must be a positive integer"):
        n_threads()


def test_limited_caps_blas_and_restores(monkeypatch):
    import numpy  # noqa: F401  (loads its BLAS)

    before = [p["num_threads"] for p in threadpool_info()]
    monkeypatch.setenv("FMB_THREADS", "1")
    with limited() as k:
        assert k == 1 and all(p["num_threads"] == 1 for p in threadpool_info())
    assert [p["num_threads"] for p in threadpool_info()] == before


def test_cli_threads_option_sets_the_environment(monkeypatch):
    import os

    from click.testing import CliRunner

    from fmb.cli import cli

    monkeypatch.delenv("FMB_THREADS", raising=False)
    assert CliRunner().invoke(cli, ["--threads", "2", "plugins", "--json"]).exit_code == 0
    assert os.environ.pop("FMB_THREADS") == "2"
    assert CliRunner().invoke(cli, ["--threads", "0", "plugins"]).exit_code == 2


def test_embed_and_the_report_map_run_with_the_stage_thread_count(toy, monkeypatch):
    """Every stage caps its pools (module docstring of fmb.threads): observed from inside the model's embed
    and the report's 2-D map, with FMB_THREADS=1 against a default of more."""
    import numpy as np

    from fmb.plugins import registry
    from fmb.protocol import embed as E
    from fmb.protocol.run import RunConfig, load_model, open_dataset
    from fmb.report import embedmap

    seen = []
    monkeypatch.setenv("FMB_THREADS", "1")
    reg = registry()
    model = load_model(reg, RunConfig(model="baseline", detector="knn"), "cpu")
    real = model.embed

    def spy(batch, *a, **k):
        seen.append({p["num_threads"] for p in threadpool_info()})
        return real(batch, *a, **k)

    monkeypatch.setattr(model, "embed", spy)
    E.embed_dataset(model, open_dataset(reg, "toy", {"size": 20}), batch_size=8, workers=0)
    real_project = embedmap._project

    def spy_project(*a):
        seen.append({p["num_threads"] for p in threadpool_info()})
        return real_project(*a)

    monkeypatch.setattr(embedmap, "_project", spy_project)
    xy = embedmap.project(np.random.default_rng(0).normal(size=(30, 8)), "pca")
    assert xy.shape == (30, 2) and np.isfinite(xy).all()
    assert len(seen) >= 2 and all(s == {1} for s in seen)
