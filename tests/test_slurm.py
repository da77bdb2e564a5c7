"""The executors: templates, Slurm profile, a killed local worker resumes, and (on a reachable cluster)
Slurm results equal local ones and a scancel'd array task is rerun on resubmission.

The cluster tests need `scontrol ping` to succeed (start one with `slurm/cluster.sh start`); they skip
otherwise, and fail instead when FMB_REQUIRE_SLURM=1 (CI).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.executors import slurm as S
from fmb.testing.plugins import registered_plugin

ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic:size=64,chunk_size=16"
FAST = ["--dataset", DATASET, "--detector", "iforest", "-q", "--no-report"]

SLOW_PLUGIN = '''
"""A test model: the baseline, sleeping FMB_SLOW_DELAY seconds per batch (not part of the cache key)."""
import os
import time

from fmb import __version__, hookimpl
from fmb.builtin.models import IMAGE_DIM, SPECTRUM_DIM
from fmb.models.base import WeightsInfo
from fmb.models.baseline import BaselineModel
from fmb.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(name="slow", description="baseline, slowly", loader="fmb_slowtest:load_model",
                       version=__version__, license="MIT", modalities=("image", "spectrum"),
                       outputs={"image": IMAGE_DIM, "spectrum": SPECTRUM_DIM, "joint": IMAGE_DIM + SPECTRUM_DIM}))


class SlowModel(BaselineModel):
    def embed(self, batch):
        time.sleep(float(os.environ.get("FMB_SLOW_DELAY", "0")))
        return super().embed(batch)


def load_model(spec, weights="auto", device="cpu", options=None, seed=0):
    return SlowModel(spec, WeightsInfo(kind="none"), {})
'''


@pytest.fixture
def slow_site(tmp_path, monkeypatch):
    """A `slow` model plugin installed for subprocesses (PYTHONPATH + an entry point) and registered here."""
    site = tmp_path / "site"
    dist = site / "fmb_slowtest-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "fmb_slowtest.py").write_text(SLOW_PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fmb-slowtest\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fmb]\nslow = fmb_slowtest\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    spec = importlib.util.spec_from_file_location("fmb_slowtest", site / "fmb_slowtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with registered_plugin(module, "slow"):  # known here by name; loaded only in subprocesses
        yield site


# ---------------------------------------------------------------- without a cluster


def render_all(values: str = "x") -> dict[str, str]:
    out = {}
    for name in S.template_names():
        text = (S.template_root() / name).read_text()
        out[name] = S.render_template(name, **{k: values for k in S.PLACEHOLDER.findall(text)})
    return out


def test_templates_render_with_no_leftover_placeholders_and_pass_bash_n(tmp_path):
    rendered = render_all("value")
    stages = {name.split("/")[0] for name in rendered}
    assert stages == {"01_retrain", "02_embeddings", "03_detection", "04_analysis"}
    for name, text in rendered.items():
        assert "{{" not in text and "}}" not in text, name
        script = tmp_path / name.replace("/", "-")
        script.write_text(text)
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, name
    with pytest.raises(Exception, match="no value for"):
        S.render_template("02_embeddings/embed.sbatch", job_name="x")


def test_repository_slurm_folder_holds_the_templates():
    for name in S.template_names():
        assert (ROOT / "slurm" / name).read_text() == (S.template_root() / name).read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "slurm" / "cluster.sh")]).returncode == 0


def test_slurm_profile_stages_and_flags(tmp_path):
    profile = tmp_path / "site.toml"
    profile.write_text(
        '[slurm]\npartition = "gpu"\naccount = "astro"\ngpus_per_task = 1\ntime = "10:00:00"\n'
        'array_parallelism = 8\nextra = ["--constraint=a100"]\nsetup = ["module load cuda"]\n'
        '[slurm.detect]\ntime = "01:00:00"\nmem = "16G"\n'
    )
    opts = S.SlurmOptions.from_profile(str(profile), array_parallelism=None, mem="32G", account=None)
    embed = opts.sbatch_lines("embed").splitlines()
    detect = opts.sbatch_lines("detect").splitlines()
    assert {
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --time=10:00:00",
        "#SBATCH --mem=32G",
        "#SBATCH --account=astro",
        "#SBATCH --constraint=a100",
    } <= set(embed)
    assert "#SBATCH --time=01:00:00" in detect and "#SBATCH --mem=32G" in detect  # flags win
    assert not any("gpus" in line for line in detect)
    assert opts.array_parallelism == 8 and opts.setup("embed") == "module load cuda"
    assert S.array_spec([0, 1, 2, 5, 7, 8], 3) == "0-2,5,7-8%3"
    profile.write_text('[slurm]\npartitoin = "x"\n')
    with pytest.raises(Exception, match="unknown key"):
        S.SlurmOptions.from_profile(str(profile))


def _cache_markers(home: Path) -> list[Path]:
    return sorted(home.glob("embeddings/slow/*/shard-*.json"))


def test_killed_local_worker_resumes(slow_site, fmb_home, tmp_path):
    """kill -9 of an `fmb embed` process mid-way: the rerun embeds only the shards that were not finished."""
    env = {**os.environ, "FMB_SLOW_DELAY": "0.4"}
    cmd = [
        sys.executable,
        "-m",
        "fmb.cli",
        "embed",
        "--model",
        "slow",
        "--dataset",
        DATASET,
        "--shard-size",
        "16",
        "--batch-size",
        "8",
        "-q",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not _cache_markers(fmb_home) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_cache_markers(fmb_home))
    assert 1 <= done < 4, proc.stdout.read().decode()
    env["FMB_SLOW_DELAY"] = "0"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"built {4 - done} shard(s)" in rerun.stdout
    cache = _cache_markers(fmb_home)[0].parent
    ids = [i for f in sorted(cache.glob("shard-*.parquet")) for i in pq.read_table(f).column("object_id").to_pylist()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 64
    assert json.loads((cache / "manifest.json").read_text())["complete"] is True


# ---------------------------------------------------------------- on a cluster


@functools.lru_cache
def _reachable(slurm_conf: str) -> bool:
    return S.cluster_reachable()  # once per configuration: an unreachable one costs a timeout


@pytest.fixture
def cluster(monkeypatch):
    """A reachable Slurm cluster (the one of slurm/cluster.sh when SLURM_CONF is not set)."""
    default = Path(os.environ.get("FMB_SLURM_DIR", "/tmp/fmb-slurm")) / "etc" / "slurm.conf"
    if not os.environ.get("SLURM_CONF") and default.exists():
        monkeypatch.setenv("SLURM_CONF", str(default))
    if not _reachable(os.environ.get("SLURM_CONF", "")):
        reason = "no Slurm cluster reachable (`scontrol ping` failed; start one: slurm/cluster.sh start)"
        if os.environ.get("FMB_REQUIRE_SLURM") == "1":
            pytest.fail(reason + " and FMB_REQUIRE_SLURM=1")
        pytest.skip(reason)


def invoke(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def metrics(run: Path) -> dict:
    res = json.loads((run / "results.json").read_text())
    return {m: e["metrics"] for m, e in res["modalities"].items()}


def test_slurm_results_equal_local(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("FMB_HOME", str(tmp_path / "home-local"))
    invoke("run", "--model", "baseline", *FAST, "--shards", "4", "--output", str(tmp_path / "local"))
    monkeypatch.setenv("FMB_HOME", str(tmp_path / "home-slurm"))
    out = invoke(
        "run",
        "--model",
        "baseline",
        *FAST,
        "--shards",
        "4",
        "--output",
        str(tmp_path / "slurm"),
        "--executor",
        "slurm",
        "--wait",
    )
    assert "array 0-3" in out and ": complete" in out
    local, remote = tmp_path / "local", tmp_path / "slurm"
    assert metrics(local) == metrics(remote)
    assert pq.read_table(local / "scores.parquet").equals(pq.read_table(remote / "scores.parquet"))
    for script in (remote / "slurm").glob("*.sbatch"):
        text = script.read_text()
        assert "{{" not in text and f"export FMB_HOME={tmp_path / 'home-slurm'}" in text
        assert f"{sys.executable} -m fmb.cli" in text
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    logs = sorted(p.name for p in (remote / "slurm" / "logs").iterdir())
    assert len(logs) == 5  # 4 embedding tasks + detection
    info = json.loads(invoke("status", str(remote), "--json"))
    assert info["complete"] and {j["state"] for j in info["jobs"]} == {"COMPLETED"}
    assert "nothing to submit" in invoke(
        "run", "--model", "baseline", *FAST, "--shards", "4", "--output", str(remote), "--executor", "slurm"
    )


def test_scancelled_array_task_is_rerun_on_resubmission(cluster, slow_site, tmp_path, monkeypatch):
    monkeypatch.setenv("FMB_SLOW_DELAY", "1")
    run = tmp_path / "run"
    args = [
        "run",
        "--model",
        "slow",
        *FAST,
        "--batch-size",
        "16",
        "--shards",
        "3",
        "--output",
        str(run),
        "--executor",
        "slurm",
        "--array-parallelism",
        "1",
    ]
    invoke(*args)
    plan = json.loads((run / "fmb-run.json").read_text())
    job = next(iter(plan["submissions"][-1]["embed"].values()))["job"]
    subprocess.run(["scancel", f"{job}_2"], check=True)
    S.wait(load_plan(run), timeout=300)  # until the detection job is left pending on a failed dependency
    info = json.loads(invoke("status", str(run), "--json"))
    assert not info["complete"] and info["embeddings"][0]["missing"] == [2]
    monkeypatch.setenv("FMB_SLOW_DELAY", "0")
    out = invoke(*args, "--wait")
    assert "array 2" in out and "array 0" not in out and ": complete" in out
    assert (run / "results.json").exists()
    plan = json.loads((run / "fmb-run.json").read_text())
    assert len(plan["submissions"]) == 2 and next(iter(plan["submissions"][-1]["embed"].values()))["tasks"] == [2]


def load_plan(run: Path):
    from fmb.executors.plan import RunPlan

    return RunPlan.load(run)
