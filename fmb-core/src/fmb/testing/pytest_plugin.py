"""The ``fmb`` pytest plugin (entry point ``pytest11``), active wherever fmb-core is installed.

Fixtures (none is autouse, so unrelated test suites are untouched):

``fmb_home``        an empty ``FMB_HOME`` for this test (no test touches the user's cache);
``fmb_toy``         the tiny canonical ``toy`` data set (:class:`fmb.testing.toy.ToyDataset`, 64 rows);
``fmb_toy_batch``   one canonical batch of it (12 rows, every modality);
``fmb_toy_registered``  the ``toy`` dataset registered for this test, removed after;
``fmb_register``    ``fmb_register(plugin, name)`` registers a plugin for this test, removed after.

The fixtures are defined in :mod:`fmb.testing.fixtures` (one module for every fixture FMB ships).
Conformance checks: :mod:`fmb.testing.conformance` (``parametrize("model", "mymodel")``).
"""

from __future__ import annotations

from fmb.testing.fixtures import (  # noqa: F401 - pytest collects the fixtures of this module
    fmb_home_on_request,
    fmb_register,
    fmb_toy,
    fmb_toy_batch,
    fmb_toy_registered,
)
