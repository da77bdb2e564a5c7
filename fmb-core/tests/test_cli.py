"""The command line end to end: Click's runner and a real subprocess; bad input gives one line."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_writes_results_and_scores(toy, tmp_path):
    out = tmp_path / "run"
    r = invoke(
        "run", "--model", "baseline", "--detector", "iforest", "--dataset", "toy:size=120", "--output", str(out), "-q"
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == 2
    assert set(res["modalities"]) == {"image", "spectrum", "joint"}
    for entry in res["modalities"].values():
        m = entry["metrics"]
        assert 0 <= m["auroc"] <= 1 and 0 <= m["average_precision"] <= 1
        assert set(m["per_class"]) == {"blob", "spike"}
    assert res["dataset"]["size"] == 120 and res["dataset"]["fingerprint"]
    assert res["model"]["weights"]["kind"] == "none"
    assert res["environment"]["seed"] == 0 and res["environment"]["device"] == "cpu"
    assert res["config"]["detector"] == "iforest"
    assert "fmb-astroclip" in res["plugins"]
    scores = pq.read_table(out / "scores.parquet")
    assert scores.num_rows == 3 * 120
    assert {"object_id", "modality", "score", "rank", "is_anomaly", "anomaly_class"} <= set(scores.column_names)


def test_same_command_twice_reuses_embeddings_and_gives_identical_metrics(toy, tmp_path):
    args = ["run", "--model", "baseline", "--detector", "iforest", "--dataset", "toy:size=80", "-q"]
    invoke(*args, "--output", str(tmp_path / "a"))
    invoke(*args, "--output", str(tmp_path / "b"))
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert not a["embedding"]["reused"] and b["embedding"]["reused"]
    metrics = [{k: v["metrics"] for k, v in r["modalities"].items()} for r in (a, b)]
    assert metrics[0] == metrics[1]
    sa, sb = pq.read_table(tmp_path / "a" / "scores.parquet"), pq.read_table(tmp_path / "b" / "scores.parquet")
    assert sa.equals(sb)


def test_matrix_run_and_toml_config(toy, tmp_path):
    cfg = tmp_path / "bench.toml"
    cfg.write_text(
        '[benchmark]\nmodels = ["baseline"]\ndetectors = ["ecod", "knn"]\n'
        'datasets = ["toy"]\nmodality = "joint"\n\n[datasets.toy]\nsize = 60\n\n'
        "[detectors.knn]\nn_neighbors = 7\n"
    )
    r = invoke("run", "--config", str(cfg), "--output", str(tmp_path / "m"), "-q")
    assert r.exit_code == 0, r.output
    dirs = sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir())
    assert len(dirs) == 2 and any("n_neighbors=7" in d for d in dirs)
    assert {"leaderboard.csv", "leaderboard.parquet"} <= {p.name for p in (tmp_path / "m").iterdir()}
    for d in dirs:
        res = json.loads((tmp_path / "m" / d / "results.json").read_text())
        assert list(res["modalities"]) == ["joint"] and res["dataset"]["size"] == 60
    # a command-line flag overrides the file
    r = invoke("run", "--config", str(cfg), "--detector", "hbos", "--output", str(tmp_path / "o"), "-q")
    assert json.loads((tmp_path / "o" / "results.json").read_text())["detector"]["name"] == "hbos"


def test_embed_then_detect_stages(toy, tmp_path):
    r = invoke(
        "detect",
        "--model",
        "baseline",
        "--detector",
        "knn",
        "--dataset",
        "toy:size=50",
        "--output",
        str(tmp_path / "d"),
        "-q",
    )
    assert r.exit_code == 2 and "run `fmb embed` first" in r.output
    r = invoke("embed", "--model", "baseline", "--dataset", "toy:size=50", "-q")
    assert r.exit_code == 0 and "built 1 shard" in r.output
    r = invoke(
        "detect",
        "--model",
        "baseline",
        "--detector",
        "knn",
        "--dataset",
        "toy:size=50",
        "--output",
        str(tmp_path / "d"),
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "d" / "results.json").read_text())["embedding"]["reused"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--model", "basline", "--detector", "iforest"], "unknown model 'basline'; did you mean baseline?"),
        (["run", "--model", "baseline", "--detector", "iforets"], "did you mean iforest?"),
        (
            ["run", "--model", "baseline", "--detector", "knn:n_neighbours=3", "--dataset", "toy:size=20"],
            "detector 'knn': unknown parameter(s) n_neighbours",
        ),
        (["run", "--model", "baseline", "--detector", "knn:n_neighbors", "--dataset", "toy"], "expected key=value"),
        (["run", "--model", "baseline"], "no detector given"),
        (["run", "--config", "/nonexistent/bench.toml", "--model", "baseline", "--detector", "knn"], "cannot read"),
        (["run", "--model", "baseline:depth=3", "--detector", "knn", "--dataset", "toy:size=20"], "takes no options"),
        (["run", "--model", "baseline", "--detector", "knn", "--dataset", "toy:size=-5"], "toy dataset: bad options"),
        (
            [
                "run",
                "--model",
                "baseline",
                "--detector",
                "knn",
                "--dataset",
                "toy:size=20",
                "--weights",
                "/no/such.ckpt",
            ],
            "no such file",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(toy, tmp_path, args, message):
    r = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "x")])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], r.output


def test_invalid_toml_names_the_file(toy, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[benchmark\nmodels = ")
    r = CliRunner().invoke(cli, ["run", "--config", str(bad)])
    assert r.exit_code == 2 and "bad.toml" in r.output and "invalid TOML" in r.output


def test_unwritable_output_directory(toy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "baseline",
            "--detector",
            "knn",
            "--dataset",
            "toy:size=20",
            "--output",
            str(blocker / "sub"),
        ],
    )
    assert r.exit_code == 2 and "is not writable" in r.output


def test_debug_shows_the_traceback(toy):
    r = CliRunner().invoke(cli, ["--debug", "run", "--model", "basline", "--detector", "knn"])
    assert r.exit_code != 0 and r.exception is not None


def test_listing_commands_json():
    for cmd, name in (("models", "baseline"), ("datasets", "synthetic"), ("detectors", "iforest")):
        r = invoke(cmd, "--json")
        assert name in [row["name"] for row in json.loads(r.output)]
    plugins = json.loads(invoke("plugins", "--json").output)
    by_dist = {p["distribution"]: p for p in plugins}
    for dist, model in (("fmb-astropt", "astropt"), ("fmb-astroclip", "astroclip"), ("fmb-aion", "aion")):
        assert model in by_dist[dist]["registers"]["model"]
        assert "register_models" in by_dist[dist]["hooks"]


def run_fmb(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "fmb.cli", *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


def test_help_and_plugins_do_not_import_heavy_modules():
    code = (
        "import sys; from fmb.cli import main; sys.argv=['fmb','plugins','--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('torch','pyod','sklearn','torchvision','pyarrow','numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in p.stderr, p.stderr


def test_version_and_subprocess_error_exit_code():
    p = run_fmb("--version")
    assert p.returncode == 0 and "fmb, version" in p.stdout
    p = run_fmb("run", "--model", "nope", "--detector", "iforest")
    assert p.returncode == 2 and p.stderr.strip().startswith("Error: unknown model 'nope'")


# ---------------------------------------------------------------- the run folder as one unit


def _run(out, *extra, detector="iforest", dataset="toy:size=40"):
    return CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "baseline",
            "--detector",
            detector,
            "--dataset",
            dataset,
            "--modality",
            "image",
            "--output",
            str(out),
            "-q",
            "--no-report",
            *extra,
        ],
    )


def _error_line(r):
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    return lines[0]


def test_folder_of_another_system_is_refused_unless_overwrite(toy, tmp_path):
    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    (out / "report.html").write_text("iforest report")
    (out / "figures").mkdir()
    (out / "figures" / "roc_pr.png").write_bytes(b"png")
    before = (out / "results.json").read_bytes()
    line = _error_line(_run(out, detector="knn"))
    assert "holds another system's run (baseline x iforest" in line and "--overwrite" in line
    assert (out / "results.json").read_bytes() == before and (out / "report.html").exists()
    r = _run(out, "--overwrite", detector="knn")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "results.json").read_text())["config"]["detector"] == "knn"
    assert not (out / "report.html").exists() and not (out / "figures").exists()


def test_same_system_again_replaces_its_run_and_stale_report(toy, tmp_path):
    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    first = json.loads((out / "results.json").read_text())["run_id"]
    (out / "report.html").write_text("old report")
    assert _run(out).exit_code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run_id"] != first and not (out / "report.html").exists()
    assert pq.read_schema(out / "scores.parquet").metadata[b"fmb.run_id"].decode() == res["run_id"]


@pytest.mark.parametrize(
    "target, err, words", [("results.json", 28, "No space left on device"), ("scores.parquet", 13, "Permission denied")]
)
def test_disk_full_or_no_permission_is_one_line_and_never_looks_complete(
    toy, tmp_path, monkeypatch, target, err, words
):
    import os as _os

    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    real_replace = _os.replace

    def failing_replace(src, dst, *a, **k):
        if str(dst).endswith(target):
            raise OSError(err, _os.strerror(err))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr("fmb.io.os.replace", failing_replace)
    line = _error_line(_run(out, "--overwrite", detector="knn"))
    assert str(out / target) in line and words in line
    monkeypatch.setattr("fmb.io.os.replace", real_replace)
    assert not (out / "results.json").exists()  # the old results are gone: no old/new mix
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for cmd in (["report", str(out)], ["compare", str(out), str(out), "--out", str(tmp_path / "cmp")]):
        assert "results.json is missing beside scores.parquet" in _error_line(CliRunner().invoke(cli, cmd))


def test_readers_refuse_scores_of_another_run(toy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(a).exit_code == 0 and _run(b, detector="knn").exit_code == 0
    (b / "scores.parquet").write_bytes((a / "scores.parquet").read_bytes())
    for cmd in (["report", str(b)], ["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]):
        assert "come from different runs" in _error_line(CliRunner().invoke(cli, cmd))
    from fmb.probes.embeddings import read_results
    from fmb.report.collect import load_run

    for reader in (load_run, read_results):
        with pytest.raises(Exception, match="come from different runs"):
            reader(b)


def test_bad_parameters_fail_before_any_work(toy, tmp_path, fmb_home):
    for det in ("nf:n_components=0", "nf:epochs=0", "knn:method=foo", "nf:hidden=-5", "nf:lr=-1"):
        r = CliRunner().invoke(
            cli,
            [
                "run",
                "--model",
                "baseline",
                "--detector",
                "iforest",
                "--detector",
                det,
                "--dataset",
                "toy:size=40",
                "--output",
                str(tmp_path / "o"),
                "-q",
            ],
        )
        assert det.split(":")[1].split("=")[0] in _error_line(r)
    assert not (fmb_home / "embeddings").exists() and not (tmp_path / "o").exists()


def test_compare_warns_when_data_sets_differ(toy, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert _run(a).exit_code == 0 and _run(b, detector="knn").exit_code == 0
    assert _run(c, dataset="toy:size=40,seed=1").exit_code == 0
    same = CliRunner().invoke(cli, ["compare", str(a), str(b), "--out", str(tmp_path / "ab"), "--bootstrap", "0"])
    assert same.exit_code == 0 and "different data sets" not in same.output
    diff = CliRunner().invoke(cli, ["compare", str(a), str(c), "--out", str(tmp_path / "ac"), "--bootstrap", "0"])
    assert diff.exit_code == 0, diff.output
    assert "different data sets" in diff.output and "a" in diff.output and "c" in diff.output
