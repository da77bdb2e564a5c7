"""The plugin manager: built-in default plugins plus the ``fmb`` entry-point group.

Environment variables:

``FMB_LOAD_PLUGINS=a,b``       load only these entry points (by entry-point or distribution name);
                               an empty value loads no third-party plugin.
``FMB_RAISE_PLUGIN_ERRORS=1``  raise on a broken plugin instead of skipping it with a warning.
``FMB_TRACE_PLUGINS=1``        print every hook call to stderr.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from fmb import __version__, hookspecs
from fmb.specs import SPEC_TYPES, DatasetSpec, DetectorSpec, ModelSpec, SpecError, _BaseSpec

DEFAULT_PLUGINS = ("fmb.builtin.datasets", "fmb.builtin.detectors", "fmb.builtin.models")
HOOKS = {"model": "register_models", "dataset": "register_datasets", "detector": "register_detectors"}


class PluginError(RuntimeError):
    """A broken plugin: import error, bad hook implementation, bad spec or duplicate name."""


class UnknownNameError(LookupError):
    """A name that no plugin registered; the message suggests the closest names."""


@dataclass
class PluginInfo:
    """One loaded plugin: where it comes from."""

    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)


_pm: pluggy.PluginManager | None = None
_info: dict[str, PluginInfo] = {}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"fmb: warning: {message}", file=sys.stderr)


def _fail(message: str, exc: BaseException | None = None) -> None:
    if _truthy("FMB_RAISE_PLUGIN_ERRORS"):
        raise PluginError(message) from exc
    warn(message + " (skipped; set FMB_RAISE_PLUGIN_ERRORS=1 to raise)")


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(c.name for c in (pm.get_hookcallers(plugin) or []))


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str, distribution: str,
                    version: str) -> bool:
    """Register one plugin object, checking its hook implementations; False if it was skipped."""
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError, ValueError for duplicates
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        _fail(f"plugin {name!r} from {distribution}: {type(exc).__name__}: {exc}".splitlines()[0], exc)
        return False
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    _info[name] = PluginInfo(name, distribution, version, module, _hooks_of(pm, plugin))
    return True


def _selected(only: str | None, ep_name: str, dist: str) -> bool:
    if only is None:
        return True
    wanted = {s.strip() for s in only.split(",") if s.strip()}
    return ep_name in wanted or dist in wanted


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    only = os.environ.get("FMB_LOAD_PLUGINS")
    for ep in sorted(entry_points(group="fmb"), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist else "unknown distribution"
        version = ep.dist.version if ep.dist else "?"
        if not _selected(only, ep.name, dist):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            _fail(f"plugin {ep.name!r} from {dist} failed to import: {type(exc).__name__}: {exc}", exc)
            continue
        register_plugin(pm, plugin, ep.name, dist, version)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (entry points are loaded once)."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("fmb")
        pm.add_hookspecs(hookspecs)
        for mod in DEFAULT_PLUGINS:
            register_plugin(pm, __import__(mod, fromlist=["_"]), mod, "fmb-core", __version__)
        _load_entry_points(pm)
        if _truthy("FMB_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda msg: print(f"fmb-trace: {msg}", end="", file=sys.stderr))
            pm.enable_tracing()
        _pm = pm
    return _pm


def plugin_info() -> list[PluginInfo]:
    """Loaded plugins, with distribution, version and the hooks each implements."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        info = _info.get(name) or PluginInfo(name, "(registered at run time)", "", str(plugin), [])
        info.hooks = _hooks_of(pm, plugin)
        out.append(info)
    return out


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm or get_plugin_manager()
        self.specs: dict[str, dict[str, _BaseSpec]] = {k: {} for k in HOOKS}
        for kind, hook in HOOKS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():  # registration order
                self._collect(kind, impl)

    def _source(self, plugin_name: str) -> str:
        info = _info.get(plugin_name)
        return f"{info.distribution} ({plugin_name})" if info else plugin_name

    def _collect(self, kind: str, impl: Any) -> None:
        source = self._source(impl.plugin_name)
        expected = SPEC_TYPES[kind]

        def register(spec: _BaseSpec) -> None:
            try:
                if not isinstance(spec, expected):
                    raise SpecError(f"{HOOKS[kind]} must register {expected.__name__} objects, "
                                    f"got {type(spec).__name__}")
                spec.validate()
            except SpecError as exc:
                _fail(f"plugin {source}: {exc}", exc)
                return
            prior = self.specs[kind].get(spec.name)
            if prior is not None:
                _fail(f"duplicate {kind} name {spec.name!r}: registered by {prior.source} and by {source}")
                return
            self.specs[kind][spec.name] = replace(spec, source=source)

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            _fail(f"plugin {source}: {HOOKS[kind]} failed: {type(exc).__name__}: {exc}", exc)

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> Any:
        """The spec of ``kind`` called ``name``; an unknown name suggests the closest ones."""
        try:
            return self.specs[kind][name]
        except KeyError:
            names = self.names(kind)
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.7)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown {kind} {name!r}{hint} (registered: {', '.join(names) or 'none'})"
                                   ) from None

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def detector(self, name: str) -> DetectorSpec:
        return self.get("detector", name)


def registry() -> Registry:
    """A fresh view of what the currently registered plugins provide."""
    return Registry()
