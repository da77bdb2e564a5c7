"""The ``fmb`` pytest plugin (entry point ``pytest11``), active wherever fmb-core is installed.

Fixtures (none is autouse, so unrelated test suites are untouched):

``fmb_home``        an empty ``FMB_HOME`` for this test (no test touches the user's cache);
``fmb_toy``         the tiny canonical ``toy`` data set (:class:`fmb.testing.toy.ToyDataset`, 64 rows);
``fmb_toy_batch``   one canonical batch of it (12 rows, every modality);
``fmb_toy_registered``  the ``toy`` dataset registered for this test, removed after;
``fmb_register``    ``fmb_register(plugin, name)`` registers a plugin for this test, removed after.

Conformance checks: :mod:`fmb.testing.conformance` (``parametrize("model", "mymodel")``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from fmb.testing.plugins import registered_plugin
from fmb.testing.toy import ToyDataset, toy_dataset_plugin


@pytest.fixture
def fmb_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """An empty FMB home for this test."""
    home = tmp_path_factory.mktemp("fmb_home")
    monkeypatch.setenv("FMB_HOME", str(home))
    return home


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
def fmb_toy_registered() -> Iterator[object]:
    """The ``toy`` dataset registered for this test, then removed."""
    with registered_plugin(toy_dataset_plugin(), "toy-dataset") as plugin:
        yield plugin


@pytest.fixture
def fmb_register() -> Iterator[Callable[..., object]]:
    """``fmb_register(plugin, name)``: register a plugin for this test; it is removed afterwards."""
    with ExitStack() as stack:
        def register(plugin: object, name: str, distribution: str = "test-plugin") -> object:
            return stack.enter_context(registered_plugin(plugin, name, distribution))

        yield register
