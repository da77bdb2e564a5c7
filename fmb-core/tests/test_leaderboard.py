"""A matrix has one answer: the leaderboard (mean ± sd over seeds, bootstrap intervals), matrix folders in
every command, unique summary labels, the results.json schema, unwrapped tables in pipes, and the real
embedding seconds of sharded runs."""

import json
import os
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy.stats import bootstrap
from sklearn.metrics import average_precision_score, roc_auc_score

import fmb
from fmb.cli import cli
from fmb.errors import UsageError
from fmb.leaderboard import leaderboard
from fmb.protocol.metrics import _BATCH, bootstrap_intervals
from fmb.runs import SCHEMA_VERSION, expand_run_dirs, json_schema, read_results, validate_results

MATRIX = [
    "--model",
    "baseline",
    "--model",
    "example",
    "--detector",
    "iforest",
    "--detector",
    "knn",
    "--detector",
    "knn:n_neighbors=10",
    "--seed",
    "0",
    "--seed",
    "1",
    "--dataset",
    "synthetic:size=120",
]


def invoke(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """2 models x 3 detectors x 2 seeds on synthetic:size=120, sharded (a plan file beside the systems)."""
    root = tmp_path_factory.mktemp("matrix")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMB_HOME", str(root / "home"))
        r = invoke("run", *MATRIX, "--shards", "2", "--output", root / "m", "--no-report", "-q")
    return root / "m", r.output


def _auroc_ap(run_dir, modality):
    """AUROC and AP from scores.parquet with scikit-learn, independently of results.json."""
    t = pq.read_table(run_dir / "scores.parquet").to_pandas()
    t = t[(t.modality == modality) & t.score.notna() & t.is_anomaly.notna()]
    y = t.is_anomaly.astype(bool).to_numpy()
    return roc_auc_score(y, t.score), average_precision_score(y, t.score)


def test_matrix_writes_a_leaderboard_with_seed_spread_and_intervals(matrix):
    root, output = matrix
    systems = expand_run_dirs(root)
    assert len(systems) == 12 and (root / "fmb-run.json").exists()  # the plan beside them is ignored
    df = pd.read_csv(root / "leaderboard.csv")
    assert len(df) == 2 * 3 * 3  # models x detectors x outputs (image, spectrum, joint)
    assert pq.read_schema(root / "leaderboard.parquet").metadata[b"fmb.main_score"] == b"auroc"
    assert list(df["rank"]) == list(range(1, len(df) + 1))
    assert (np.diff(df["auroc"]) <= 0).all()  # best first: AUROC, higher is better
    assert "main score: AUROC, higher is better" in output
    for row in df.itertuples():
        dirs = [
            p
            for p in systems
            if read_results(p)["config"]["seed"] in (0, 1)
            and row.system.startswith(read_results(p)["config"]["model"] + "/")
            and row.system == _label(read_results(p))
        ]
        assert row.n_seeds == 2 and len(dirs) == 2
        aurocs, aps = zip(*(_auroc_ap(d, row.modality) for d in dirs))
        assert row.auroc == pytest.approx(np.mean(aurocs)) and row.ap == pytest.approx(np.mean(aps))
        assert row.auroc_sd == pytest.approx(np.std(aurocs, ddof=1), abs=1e-12)
        lows = [read_results(d)["modalities"][row.modality]["metrics"]["auroc_ci"][0] for d in dirs]
        assert row.auroc_ci_low == pytest.approx(np.mean(lows))
        assert row.auroc_ci_low <= row.auroc_ci_high and row.ap_ci_low <= row.ap_ci_high
    spread = df[df.system.str.contains("/iforest/")]["auroc_sd"]
    assert (spread > 0).any()  # iforest's seeds differ: the spread is real, not a placeholder


def _label(res):
    from fmb.leaderboard import system_label

    return system_label(res["config"])


def test_summary_and_leaderboard_labels_are_unique(matrix):
    root, output = matrix
    df = leaderboard([str(root)])
    assert not df.duplicated(["system", "modality"]).any()
    assert {"baseline/knn/synthetic:size=120", "baseline/knn:n_neighbors=10/synthetic:size=120"} <= set(df.system)
    assert "| baseline/knn:n_neighbors=10/synthetic:size=120/seed=1 | joint" in output  # the summary row


def test_bootstrap_intervals_match_scipy_with_scikit_learn():
    """The vectorised statistic (one sort, per-group counts) gives scipy.stats.bootstrap the same values as
    scikit-learn on every resample: same seed, same resamples, same interval."""
    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=90), 1)  # many ties
    y = rng.random(90) < 0.15
    got = bootstrap_intervals(s, y, seed=7, n_resamples=200)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    for name, fn in (("auroc", roc_auc_score), ("average_precision", average_precision_score)):

        def stat(a, b, fn=fn):
            idx = np.concatenate([a, b]).astype(int)
            return fn(y[idx], s[idx])

        ref = bootstrap(
            (pos, neg),
            stat,
            n_resamples=200,
            method="percentile",
            vectorized=False,
            batch=_BATCH,
            paired=False,
            random_state=np.random.default_rng(7),
        )
        assert got[f"{name}_ci"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high])
        assert got[f"{name}_stderr"] == pytest.approx(ref.standard_error)
    assert bootstrap_intervals(s, np.zeros(90, bool), seed=0)["auroc_ci"] is None  # one class: undefined


def test_results_json_validates_against_the_shipped_schema(matrix):
    import jsonschema  # an fmb-core dependency (fmb.runs.validate_results)

    root, _ = matrix
    schema = json_schema()
    res = json.loads((expand_run_dirs(root)[0] / "results.json").read_text())
    assert res["schema_version"] == SCHEMA_VERSION == 2
    validate_results(res)  # FMB's own check
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(res)
    for broken in (
        {k: v for k, v in res.items() if k != "provenance"},
        {**res, "embedding": {**res["embedding"], "seconds": -1}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
        with pytest.raises(UsageError, match=r"does not follow the results\.json schema"):
            validate_results(broken, "x/results.json")
    prov = res["provenance"]
    assert prov["started"] <= prov["finished"] and prov["hostname"] == socket.gethostname()
    assert prov["command"] == sys.argv  # the fixture ran in this process (CliRunner keeps sys.argv)
    for lib in ("astropt", "polymathic-aion", "zuko", "umap-learn"):
        try:
            assert prov["model_libraries"][lib] == version(lib)
        except PackageNotFoundError:
            assert prov["model_libraries"][lib] is None
    head = subprocess.run(
        ["git", "-C", os.path.dirname(fmb.__file__), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert (prov["git_revision"] or "").split("+")[0] == head  # the tests run from a checkout


def test_a_newer_schema_version_is_refused_in_one_line(matrix, tmp_path):
    import shutil

    root, _ = matrix
    run = tmp_path / "run"
    shutil.copytree(expand_run_dirs(root)[0], run)
    res = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**res, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(UsageError, match="newer than this FMB reads") as e:
        read_results(run)
    assert "\n" not in str(e.value)


def test_commands_accept_a_matrix_folder(matrix, tmp_path):
    root, _ = matrix
    out = invoke("compare", root, "--out", tmp_path / "cmp", "--bootstrap", "0").output
    assert "36 systems" in out  # 12 runs x 3 outputs
    status = invoke("status", root).output
    assert "complete" in status and all(p.name in status for p in expand_run_dirs(root))
    lb = invoke("leaderboard", root, "--out", tmp_path / "lb").output
    assert pd.read_csv(tmp_path / "lb" / "leaderboard.csv").equals(pd.read_csv(root / "leaderboard.csv"))
    assert "wrote" in lb
    globbed = sorted(root.iterdir())  # `fmb leaderboard runs/x/*`: the plan, progress/ and leaderboard are skipped
    assert {p.name for p in globbed} >= {"fmb-run.json", "progress", "leaderboard.csv"}
    assert expand_run_dirs([str(p) for p in globbed]) == expand_run_dirs(root)
    invoke("leaderboard", *globbed, "--no-write")
    r = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "cmp")])
    assert r.exit_code == 2 and "not an fmb run folder" in r.output


def test_the_same_system_and_seed_twice_is_refused(matrix, tmp_path):
    import shutil

    root, _ = matrix
    one = expand_run_dirs(root)[0]
    shutil.copytree(one, tmp_path / "copy")
    with pytest.raises(UsageError, match="same system"):
        leaderboard([str(one), str(tmp_path / "copy")])


def test_sharded_run_records_each_shards_real_embedding_seconds(tmp_path):
    """Slurm's path: two `fmb embed --shard` processes, then `fmb detect`; results.json lists each shard's
    seconds and device as the embedding tasks recorded them, and sums them."""
    spec = ["--model", "example", "--dataset", "synthetic:size=60"]
    for i in (0, 1):
        invoke("embed", *spec, "--shard", f"{i}/2", "-q")
    invoke("detect", *spec, "--detector", "knn", "--output", tmp_path / "run", "-q")
    res = read_results(tmp_path / "run")
    emb = res["embedding"]
    cache = next(p.parent for p in (tmp_path.parent).rglob("manifest.json") if emb["cache_key"] in str(p))
    markers = [json.loads((cache / f"shard-{i:05d}.json").read_text()) for i in (0, 1)]
    assert [s["index"] for s in emb["shards"]] == [0, 1]
    assert [s["seconds"] for s in emb["shards"]] == [m["seconds"] for m in markers]
    assert all(s["device"] == "cpu" and s["seconds"] > 0 for s in emb["shards"])
    assert emb["seconds"] == pytest.approx(sum(m["seconds"] for m in markers), abs=1e-3)


def test_tables_in_a_pipe_are_never_wrapped_or_cut(tmp_path):
    """`fmb run ... 2>&1 | cat`: the summary is a Markdown table, one line per row, whatever its width."""
    env = {**os.environ, "FMB_HOME": str(tmp_path / "home")}
    env.pop("COLUMNS", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmb.cli",
            "run",
            "--model",
            "example",
            "--detector",
            "knn:n_neighbors=10",
            "--dataset",
            "synthetic:size=60",
            "--output",
            str(tmp_path / "r"),
            "--no-report",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "…" not in out
    auroc = read_results(tmp_path / "r")["modalities"]["image"]["metrics"]["auroc"]
    rows = [line for line in out.splitlines() if line.startswith("| example/knn:n_neighbors=10/synthetic:size=60")]
    assert len(rows) == 3 and max(map(len, rows)) > 80  # one line each, wider than a default 80-column console
    assert any(f"| image    | {auroc:.3f} |" in r for r in rows)


def test_slurm_analysis_job_writes_the_leaderboard_at_the_matrix_root(matrix, tmp_path, monkeypatch):
    """The rendered stage-4 script, run as Slurm would (bash), compares the systems and writes the leaderboard."""
    from fmb.executors import slurm
    from fmb.executors.plan import DetectUnit, RunPlan

    root, _ = matrix
    systems = expand_run_dirs(root)[:2]
    plan = RunPlan(tmp_path / "job", "slurm", [], [DetectUnit(p.name, "u", [], str(p), {}) for p in systems])
    (tmp_path / "job" / "slurm").mkdir(parents=True)
    monkeypatch.setattr(slurm, "sbatch", lambda script, *opts: "1")
    common = {
        "log_dir": str(tmp_path),
        "fmb_home": str(tmp_path / "home"),
        "workdir": str(tmp_path),
        "fmb": slurm.fmb_command(),
    }
    assert slurm._submit_analysis(plan, slurm.SlurmOptions(), common, "0") == "1"
    script = (tmp_path / "job" / "slurm" / "analysis.sbatch").read_text()
    subprocess.run(["bash", "-c", script.splitlines()[-1]], cwd=tmp_path, check=True, capture_output=True)
    df = pd.read_csv(tmp_path / "job" / "leaderboard.csv")
    assert {d for s in df.run_dirs for d in json.loads(s)} == {str(p) for p in systems}  # seeds 0 and 1
    assert (df.n_seeds == 2).all() and len(df) == 3


def test_gpu_is_recorded_only_from_an_already_imported_torch(monkeypatch):
    from types import SimpleNamespace

    from fmb.protocol import environment as env

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert env.gpu_info("cuda") is None and "torch" not in sys.modules  # never imported just for this
    cuda = SimpleNamespace(
        is_available=lambda: True,
        current_device=lambda: 0,
        device_count=lambda: 2,
        get_device_name=lambda i: f"NVIDIA H200 #{i}",
    )
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda, version=SimpleNamespace(cuda="12.4")))
    assert env.gpu_info("cuda:1") == {"name": "NVIDIA H200 #1", "count": 2, "cuda": "12.4", "device_index": 1}
    assert env.gpu_info("cpu") is None


def test_git_revision_without_git_is_none(monkeypatch, tmp_path):
    from fmb.protocol import environment as env

    env.git_revision.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH
    try:
        assert env.git_revision() is None
    finally:
        env.git_revision.cache_clear()


def test_warnings_outside_a_terminal_are_one_line_each():
    import io

    from rich.console import Console

    from fmb.reporting import Reporter

    buf = io.StringIO()
    Reporter(Console(file=buf)).warn("a long warning " * 20)
    assert buf.getvalue().count("\n") == 1 and buf.getvalue().startswith("warning: a long warning")


def test_bootstrap_gives_no_interval_when_a_class_has_one_object():
    """One anomaly (or one normal object) cannot be resampled into a distribution: no interval, never a crash."""
    from fmb.protocol.metrics import bootstrap_intervals

    s = np.linspace(0, 1, 20)
    for y in (np.arange(20) == 19, np.arange(20) != 0):
        out = bootstrap_intervals(s, y, seed=0, n_resamples=50)
        assert out["auroc_ci"] is None and out["average_precision_stderr"] is None
    two = bootstrap_intervals(s, np.arange(20) >= 18, seed=0, n_resamples=50)
    assert two["auroc_ci"] is not None and two["auroc_ci"][0] <= two["auroc_ci"][1]


def test_a_bf16_run_is_another_system_than_fp32():
    """bf16 autocast gives other numbers: never averaged with fp32 as another seed, nor reused as the same run."""
    from fmb.leaderboard import system_label
    from fmb.runs import system_of

    fp32 = {"model": "astroclip", "detector": "knn", "dataset": "synthetic", "seed": 0, "precision": "fp32"}
    bf16 = {**fp32, "precision": "bf16"}
    old = {k: v for k, v in fp32.items() if k != "precision"}  # written before precision was recorded
    assert system_label(bf16) == system_label(fp32) + "/precision=bf16"
    assert system_label(old) == system_label(fp32)
    assert system_of(bf16) != system_of(fp32)
    assert system_of(old) == system_of(fp32)
