"""pytest fixtures for FMB and its plugins. Import them into a conftest.py::

    from fmb.testing.fixtures import fmb_home, toy  # noqa: F401
"""

from __future__ import annotations

import pytest

from fmb.testing.plugins import registered_plugin
from fmb.testing.toy import toy_dataset_plugin


@pytest.fixture(autouse=True)
def fmb_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty FMB home (no test touches the user's cache)."""
    home = tmp_path_factory.mktemp("fmb_home")
    monkeypatch.setenv("FMB_HOME", str(home))
    return home


@pytest.fixture
def toy():
    """Register the tiny ``toy`` dataset for one test, then remove it."""
    with registered_plugin(toy_dataset_plugin(), "toy-dataset") as plugin:
        yield plugin
