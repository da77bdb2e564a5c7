"""Every pytest fixture FMB ships, in one module.

Two ways in, one implementation each:

- the ``pytest11`` plugin (:mod:`fmb.testing.pytest_plugin`, active wherever fmb-core is installed)
  offers ``fmb_home``, ``fmb_toy``, ``fmb_toy_batch``, ``fmb_toy_registered`` and ``fmb_register``,
  none autouse, so unrelated test suites are untouched;
- a conftest.py that imports ``fmb_home`` and ``toy`` from here gets ``fmb_home`` as an *autouse*
  fixture (every test of that suite has its own empty FMB home) and ``toy`` (= ``fmb_toy_registered``)::

      from fmb.testing.fixtures import fmb_home, toy  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fmb.testing.plugins import registered_plugin
from fmb.testing.toy import ToyDataset, toy_dataset_plugin


def _empty_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FMB home for this test (``FMB_HOME`` points at it; no test touches the user's cache)."""
    home = tmp_path_factory.mktemp("fmb_home")
    monkeypatch.setenv("FMB_HOME", str(home))
    return home


def _toy_registered() -> Iterator[object]:
    """The ``toy`` dataset registered for this test, then removed."""
    with registered_plugin(toy_dataset_plugin(), "toy-dataset") as plugin:
        yield plugin


#: autouse: for a conftest.py that imports it (every test of the suite gets its own empty home)
fmb_home = pytest.fixture(_empty_home, autouse=True, name="fmb_home")
#: on request only: the pytest11 plugin's ``fmb_home``
fmb_home_on_request = pytest.fixture(_empty_home, name="fmb_home")
toy = pytest.fixture(_toy_registered, name="toy")
fmb_toy_registered = pytest.fixture(_toy_registered, name="fmb_toy_registered")


@pytest.fixture
def fmb_toy() -> ToyDataset:
    """The tiny canonical data set (64 objects, images and spectra, planted anomalies)."""
    return ToyDataset(size=64)


@pytest.fixture
def fmb_toy_batch():
    """One canonical batch (12 rows, every modality)."""
    from fmb.testing.conformance import toy_batch

    return toy_batch()


@pytest.fixture
def fmb_register() -> Iterator[Callable[..., object]]:
    """``fmb_register(plugin, name)``: register a plugin for this test; it is removed afterwards."""
    with ExitStack() as stack:

        def register(plugin: object, name: str, distribution: str = "test-plugin") -> object:
            return stack.enter_context(registered_plugin(plugin, name, distribution))

        yield register
