"""Hook specifications: the whole plugin API of FMB.

A plugin is a module with functions decorated by ``@fmb.hookimpl`` whose names match the
specs below; it is found through the ``fmb`` entry-point group::

    [project.entry-points.fmb]
    mymodel = "fmb_mymodel.plugin"

Each ``register_*`` hook receives a ``register`` callback; call it once per spec object.
Registering must stay cheap: import nothing heavy (torch and friends load lazily through
the spec's ``loader``).
"""

from __future__ import annotations

from collections.abc import Callable

import click
import pluggy

from fmb.specs import DatasetSpec, DetectorSpec, ModelSpec

hookspec = pluggy.HookspecMarker("fmb")


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register models: call ``register(ModelSpec(...))`` once per model."""


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets: call ``register(DatasetSpec(...))`` once per dataset."""


@hookspec
def register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    """Register anomaly detectors: call ``register(DetectorSpec(...))`` once per detector."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add extra sub-commands to the ``fmb`` command-line group, e.g. ``@cli.command()``."""
