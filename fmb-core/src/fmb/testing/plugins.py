"""Register a plugin for the duration of a ``with`` block (one test), then remove it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fmb import __version__
from fmb.plugins import get_plugin_manager, register_plugin


@contextmanager
def registered_plugin(plugin: object, name: str, distribution: str = "test-plugin") -> Iterator[object]:
    """``with registered_plugin(MyPlugin(), "mine"): ...`` registers it, then unregisters it."""
    pm = get_plugin_manager()
    if not register_plugin(pm, plugin, name, distribution, __version__):
        raise RuntimeError(f"plugin {name!r} could not be registered (see the warning above)")
    try:
        yield plugin
    finally:
        pm.unregister(plugin)
