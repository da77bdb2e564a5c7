"""Cross-package checks: every distribution installs, registers through its entry point, and stays light."""

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points

import pytest

PACKAGES = {
    "fmb-astropt": ("astropt", "AGPL-3.0-or-later"),
    "fmb-astroclip": ("astroclip", "MIT"),
    "fmb-aion": ("aion", "MIT"),
}


@pytest.mark.parametrize("dist", sorted(PACKAGES))
def test_model_package_declares_its_entry_point_and_licence(dist):
    name, licence = PACKAGES[dist]
    d = distribution(dist)
    eps = [ep for ep in d.entry_points if ep.group == "fmb"]
    assert [ep.name for ep in eps] == [name]  # one entry point; it may register several model names
    assert (d.metadata.get("License-Expression") or d.metadata.get("License")) == licence


def test_core_is_mit_and_provides_the_console_script():
    d = distribution("fmb-core")
    assert (d.metadata.get("License-Expression") or d.metadata.get("License")) == "MIT"
    assert any(ep.name == "fmb" and ep.value == "fmb.cli:main" for ep in entry_points(group="console_scripts"))


def test_fmb_plugins_json_lists_the_model_packages():
    out = subprocess.run(["fmb", "plugins", "--json"], capture_output=True, text=True, check=True, timeout=120)
    rows = {r["distribution"]: r for r in json.loads(out.stdout)}
    for dist, (name, _) in PACKAGES.items():
        assert name in rows[dist]["registers"]["model"]
        assert rows[dist]["version"] == distribution(dist).version


def test_no_plugin_imports_torchvision():
    code = (
        "import sys\nfrom fmb.plugins import registry\nreg = registry()\n"
        "for n in reg.names('model'):\n    reg.model(n)\n"
        "print('torchvision' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]
