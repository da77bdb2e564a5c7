"""``fmb run --executor slurm --dry-run``: the sbatch scripts are written, no Slurm command is run."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.executors import slurm as S


@pytest.fixture
def no_slurm(monkeypatch):
    """Every Slurm command (sbatch, squeue, scontrol, scancel) goes through ``S._run``: record and refuse."""
    calls = []

    def refuse(cmd, check=True):
        calls.append(cmd)
        raise AssertionError(f"dry run ran {cmd}")

    monkeypatch.setattr(S, "_run", refuse)
    return calls


def dry_run(tmp_path, *extra):
    args = ["run", "--model", "baseline", "--dataset", "synthetic:size=40,chunk_size=20", "-q", "--no-report"]
    return CliRunner().invoke(
        cli, [*args, "--executor", "slurm", "--shards", "2", "--output", str(tmp_path / "m"), "--dry-run", *extra]
    )


def test_dry_run_writes_the_scripts_and_submits_nothing(tmp_path, no_slurm):
    r = dry_run(tmp_path, "--detector", "iforest", "--detector", "knn")
    assert r.exit_code == 0, r.output
    assert no_slurm == []
    printed = [Path(line) for line in r.output.splitlines() if line.endswith(".sbatch") and " " not in line]
    names = sorted(p.name for p in printed)
    assert len(names) == 3 and names[:2] == ["analysis.sbatch", "detect.sbatch"] and names[2].startswith("embed-")
    for p in printed:
        assert p.is_file() and p.parent == tmp_path / "m" / "slurm"
        assert p.read_text().startswith("#!")
    # the would-be commands chain the jobs: detect after the embedding array, analysis after detect
    assert "--array=0-1" in r.output
    embed = next(p for p in printed if p.name.startswith("embed-"))
    assert f"--dependency=afterok:<{embed.stem}>" in r.output
    assert "--dependency=afterok:<detect>" in r.output
    assert "submitted embedding" not in r.output and "follow it with" not in r.output


def test_dry_run_needs_slurm_and_excludes_wait(tmp_path, no_slurm):
    base = ["run", "--model", "baseline", "--dataset", "synthetic:size=40", "--detector", "iforest", "-q"]
    r = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "l"), "--dry-run"])
    assert r.exit_code == 2 and "--executor slurm" in r.output
    r = dry_run(tmp_path, "--detector", "iforest", "--wait")
    assert r.exit_code == 2 and "--wait" in r.output
    assert no_slurm == []
