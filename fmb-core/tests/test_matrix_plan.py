"""A matrix folder knows the systems it was asked for: refusals known from the specs stop the whole matrix
before any work, and ``fmb status`` / ``fmb leaderboard`` never present a partial matrix as complete."""

from __future__ import annotations

import json
import shutil

import pytest

from fmb.detectors.fusion import FusionDetector
from fmb.errors import DetectorError
from fmb.executors.plan import PLAN_FILE
from fmb.plugins import registry
from fmb.testing.cli import fmb_cli

DATA = "synthetic:size=40"


def _matrix(out, *models_detectors, code=0):
    args = ["run", "-q", "--no-report", "--weights", "random", "--dataset", DATA, "--output", out]
    for kind, name in models_detectors:
        args += [f"--{kind}", name]
    return fmb_cli(*args, code=code)


def test_fusion_consistency_refuses_a_model_by_its_declared_widths():
    """The declared widths of baseline (joint = image + spectrum, no extra column) are refused before any
    embedding, in a sentence that names the widths; baseline-strong (extra columns) is accepted."""
    reg = registry()
    w = reg.model("baseline").outputs
    det = FusionDetector(base="knn", consistency=True)
    with pytest.raises(DetectorError) as exc:
        det.check_model(reg.model("baseline"))
    assert str(exc.value).endswith(
        f"model 'baseline' has joint {w['joint']} columns, image {w['image']} + spectrum {w['spectrum']} "
        "(needs extra columns after them)"
    )
    det.check_model(reg.model("baseline-strong"))  # joint is wider than image + spectrum: no error
    FusionDetector(base="knn").check_model(reg.model("baseline"))  # without consistency nothing to refuse


def test_a_refusal_known_from_the_specs_stops_the_matrix_before_anything_is_written(tmp_path):
    """The user's matrix with a system that the fusion check refuses (baseline's joint has no extra column):
    one line naming the model, exit 2, and no folder at all (before: the valid systems ran first and the
    matrix folder was left half written)."""
    out = tmp_path / "M"
    r = _matrix(
        out,
        ("model", "baseline-strong"),
        ("model", "baseline"),
        ("detector", "fusion:base=knn,mode=max,consistency=true"),
        ("detector", "iforest"),
        code=2,
    )
    assert len(r.output.strip().splitlines()) == 1
    assert "consistency=true" in r.output and "model 'baseline' has joint" in r.output
    assert not out.exists()


def test_status_and_leaderboard_name_a_planned_system_without_results(tmp_path):
    """A complete matrix reports complete and ranks; once a system's results are gone (a killed or failed
    system) status says incomplete naming it, and leaderboard refuses in one line naming it, also when
    its whole folder is gone (only the plan still knows it)."""
    out = tmp_path / "M"
    _matrix(out, ("model", "baseline"), ("detector", "iforest"), ("detector", "knn"))
    assert (out / PLAN_FILE).is_file()
    info = json.loads(fmb_cli("status", out, "--json").output)
    assert info["complete"] and info["missing"] == [] and len(info["systems"]) == 2
    assert fmb_cli("status", out).output.splitlines()[0].endswith(": complete")
    fmb_cli("leaderboard", out, "--no-write")

    labels = sorted(s["system"] for s in info["systems"])
    gone = next(label for label in labels if "knn" in label)
    (out / gone / "results.json").unlink()
    info = json.loads(fmb_cli("status", out, "--json").output)
    assert not info["complete"] and info["missing"] == [gone]
    first = fmb_cli("status", out).output.splitlines()[0]
    assert "incomplete" in first and gone in first and "1 of 2" in first
    r = fmb_cli("leaderboard", out, "--no-write", code=2)
    assert len(r.output.strip().splitlines()) == 1 and gone in r.output and "incomplete" in r.output

    shutil.rmtree(out / gone)
    assert json.loads(fmb_cli("status", out, "--json").output)["missing"] == [gone]
    assert gone in fmb_cli("leaderboard", out, "--no-write", code=2).output


def test_a_rerun_with_other_systems_ranks_only_its_own(tmp_path):
    """A second ``fmb run`` into the same folder with other systems replaces the plan; the first run's system
    folder stays on disk but is left out of the leaderboard (one warning naming it), not mixed into the table."""
    from fmb.leaderboard import leaderboard

    out = tmp_path / "m"
    _matrix(out, ("model", "baseline"), ("detector", "iforest"), ("detector", "ecod"))
    _matrix(out, ("model", "baseline"), ("detector", "iforest"), ("detector", "pca"))
    assert len([p for p in out.iterdir() if p.is_dir()]) == 3  # ecod's folder is still there
    with pytest.warns(UserWarning, match=r"left out 1 system folder\(s\) not in its plan .*ecod"):
        board = leaderboard(str(out))
    assert set(board["detector"].str.split(":").str[0]) == {"iforest", "pca"}


def test_warnings_of_the_console_script_are_one_line(capsys):
    from fmb.cli import one_line_warning

    one_line_warning(UserWarning("first line\nsecond line"), UserWarning, "x.py", 3)
    assert capsys.readouterr().err == "Warning: first line\n"


def test_a_rerun_that_fails_leaves_no_table_of_the_earlier_run(tmp_path, monkeypatch):
    """The leaderboard at a matrix's root summarises one run: a rerun into the folder that stops half-way must
    not leave the earlier run's table there looking like this one's."""
    from fmb.executors import local
    from fmb.leaderboard import CSV, PARQUET

    out = tmp_path / "m"
    _matrix(out, ("model", "baseline"), ("detector", "iforest"), ("detector", "ecod"))
    assert (out / CSV).is_file() and (out / PARQUET).is_file()
    real = local.ScoreSystem.run

    def fail_on_ecod(self, *args, **kwargs):
        if "ecod" in str(self.out_dir):
            raise DetectorError("ecod: killed half-way (test)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(local.ScoreSystem, "run", fail_on_ecod)
    _matrix(out, ("model", "baseline"), ("detector", "iforest"), ("detector", "ecod"), ("detector", "pca"), code=2)
    assert not (out / CSV).exists() and not (out / PARQUET).exists()
