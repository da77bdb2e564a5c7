"""``fmb new-plugin`` writes a package that installs, registers through its entry point and
passes the conformance kit as written."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.errors import UsageError
from fmb.scaffold import names, new_plugin


def test_names():
    assert names("my-model") == {
        "name": "my-model",
        "dist": "fmb-my-model",
        "package": "fmb_my_model",
        "cls": "MyModelModel",
        "fmb_version": names("x")["fmb_version"],
    }
    with pytest.raises(UsageError, match="must match"):
        names("MyModel")


def test_refuses_a_non_empty_folder(tmp_path):
    new_plugin("mymodel", tmp_path)
    with pytest.raises(UsageError, match="not empty"):
        new_plugin("mymodel", tmp_path)


@pytest.mark.slow
def test_skeleton_installs_and_passes_its_tests(tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", "skel", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "fmb-skel"
    assert (root / "src/fmb_skel/plugin.py").exists() and (root / "tests/test_conformance.py").exists()
    site = tmp_path / "site"  # installed into a private folder: the shared environment stays untouched
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(root),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ, PYTHONPATH=str(site), FMB_LOAD_PLUGINS="skel")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    from fmb.testing.conformance.common import MODEL_CHECKS

    # every check of the kit runs: two do not apply to the skeleton (skipped), the rest pass, and so does
    # the template's own test_registered_through_the_entry_point
    assert f"{len(MODEL_CHECKS) - 2 + 1} passed, 2 skipped" in proc.stdout
