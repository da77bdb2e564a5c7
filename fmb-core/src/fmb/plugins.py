"""The plugin manager: built-in default plugins plus the ``fmb`` entry-point group.

Environment variables:

``FMB_LOAD_PLUGINS=a,b``       load only these entry points (by entry-point or distribution name);
                               an empty value loads no third-party plugin; a name that matches
                               nothing installed is warned about.
``FMB_RAISE_PLUGIN_ERRORS=1``  raise on a broken plugin instead of skipping it with a warning.
``FMB_TRACE_PLUGINS=1``        print every hook call to stderr.

Two plugins (or a plugin and FMB itself) registering one name is a conflict: the name is
unusable (:meth:`Registry.get` raises :class:`PluginError` naming both distributions) until
one is uninstalled or ``FMB_LOAD_PLUGINS`` leaves one out; every other name keeps working.
Neither side wins, whatever the order of entry points. A plugin whose registration fails
(bad spec, a hook that raises, one name registered twice) is rolled back whole: none of its
models, datasets or detectors is registered.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from fmb import __version__, hookspecs
from fmb.specs import SPEC_TYPES, DatasetSpec, DetectorSpec, ModelSpec, SpecError, _BaseSpec

if TYPE_CHECKING:
    from fmb.datasets.base import Dataset
    from fmb.detectors.base import Detector
    from fmb.models.base import Model

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


def _fail(message: str, exc: BaseException | None = None, skipped: bool = True) -> None:
    if _truthy("FMB_RAISE_PLUGIN_ERRORS"):
        raise PluginError(message) from exc
    warn(message + (" (skipped; " if skipped else " (") + "set FMB_RAISE_PLUGIN_ERRORS=1 to raise)")


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(c.name for c in (pm.get_hookcallers(plugin) or []))


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str, distribution: str, version: str) -> bool:
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


def _norm(name: str) -> str:
    """A distribution or entry-point name in PEP 503 normal form (``Fmb_Foo`` -> ``fmb-foo``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted(only: str | None) -> set[str] | None:
    if only is None:
        return None
    return {_norm(s) for s in only.split(",") if s.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = _wanted(os.environ.get("FMB_LOAD_PLUGINS"))
    matched: set[str] = set()
    found = []
    for ep in entry_points(group="fmb"):
        dist = ep.dist.name if ep.dist else "unknown distribution"
        found.append((ep.name, dist, ep))
    for ep_name, dist, ep in sorted(found, key=lambda f: (f[0], f[1], f[2].value)):
        version = ep.dist.version if ep.dist else "?"
        if wanted is not None:
            hits = wanted & {_norm(ep_name), _norm(dist)}
            if not hits:
                continue
            matched |= hits
        try:
            plugin = ep.load()
        except Exception as exc:
            _fail(f"plugin {ep_name!r} from {dist} failed to import: {type(exc).__name__}: {exc}", exc)
            continue
        # two distributions may declare the same entry-point name: keep both (their specs then conflict)
        name = ep_name if pm.get_plugin(ep_name) is None else f"{ep_name}@{dist}"
        register_plugin(pm, plugin, name, dist, version)
    for miss in sorted((wanted or set()) - matched - {"fmb-core"}):
        installed = ", ".join(f"{n} ({d})" for n, d, _ in sorted(found)) or "none"
        warn(f"FMB_LOAD_PLUGINS names {miss!r}, which matches no installed fmb plugin (entry points: {installed})")


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


def add_commands(cli: Any) -> None:
    """Call each plugin's ``register_commands(cli)``; a plugin whose hook raises is skipped (or raises)."""
    pm = get_plugin_manager()
    trace = _truthy("FMB_TRACE_PLUGINS")
    for impl in pm.hook.register_commands.get_hookimpls():
        if trace:
            print(f"fmb-trace: register_commands [{impl.plugin_name}]", file=sys.stderr)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            info = _info.get(impl.plugin_name)
            source = f"{info.distribution} ({impl.plugin_name})" if info else impl.plugin_name
            _fail(f"plugin {source}: register_commands failed: {type(exc).__name__}: {exc}".splitlines()[0], exc)


def plugin_info() -> list[PluginInfo]:
    """Loaded plugins, with distribution, version and the hooks each implements."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        info = _info.get(name) or PluginInfo(name, "(registered at run time)", "", str(plugin), [])
        info.hooks = _hooks_of(pm, plugin)
        out.append(info)
    return out


def conflict_message(kind: str, name: str, sources: list[str]) -> str:
    """The one-line error for a name that several plugins register."""
    return (
        f"{kind} name {name!r} is registered by {' and by '.join(sources)}: it cannot be used until "
        f"one of them is uninstalled or left out with FMB_LOAD_PLUGINS"
    )


class Registry:
    """Everything the loaded plugins registered, by kind and name.

    ``specs[kind][name]`` is the spec of each usable name; ``conflicts[kind][name]`` lists the
    sources (``"distribution (plugin)"``, sorted) of a name registered more than once;
    ``failed[plugin]`` says why a plugin was rolled back whole.
    """

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm or get_plugin_manager()
        self.specs: dict[str, dict[str, _BaseSpec]] = {k: {} for k in HOOKS}
        self.conflicts: dict[str, dict[str, list[str]]] = {k: {} for k in HOOKS}
        self.failed: dict[str, str] = {}
        staged: dict[str, dict[str, dict[str, _BaseSpec]]] = {}
        for kind, hook in HOOKS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                plugin = impl.plugin_name
                if plugin in self.failed:
                    continue
                problem = self._collect(kind, impl, staged.setdefault(plugin, {k: {} for k in HOOKS}))
                if problem:
                    self.failed[plugin] = problem
                    del staged[plugin]
                    _fail(
                        f"plugin {self._source(plugin)}: {problem}; none of its models, datasets or "
                        f"detectors is registered"
                    )
        for kind in HOOKS:
            owners: dict[str, list[_BaseSpec]] = {}
            for plugin_specs in staged.values():
                for name, spec in plugin_specs[kind].items():
                    owners.setdefault(name, []).append(spec)
            for name, found in sorted(owners.items()):
                if len(found) == 1:
                    self.specs[kind][name] = found[0]
                    continue
                sources = sorted(spec.source for spec in found)
                self.conflicts[kind][name] = sources
                _fail(conflict_message(kind, name, sources), skipped=False)

    def _source(self, plugin_name: str) -> str:
        info = _info.get(plugin_name)
        return f"{info.distribution} ({plugin_name})" if info else plugin_name

    def _collect(self, kind: str, impl: Any, into: dict[str, dict[str, _BaseSpec]]) -> str:
        """Call one hook implementation, staging its specs in ``into``; the first problem, or ''."""
        source = self._source(impl.plugin_name)
        expected = SPEC_TYPES[kind]
        problems: list[str] = []

        def register(spec: _BaseSpec) -> None:
            if problems:
                return
            try:
                if not isinstance(spec, expected):
                    raise SpecError(
                        f"{HOOKS[kind]} must register {expected.__name__} objects, got {type(spec).__name__}"
                    )
                spec.validate()
            except SpecError as exc:
                problems.append(str(exc))
                return
            if spec.name in into[kind]:
                problems.append(f"registers {kind} {spec.name!r} twice")
                return
            into[kind][spec.name] = replace(spec, source=source)

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            problems.append(f"{HOOKS[kind]} failed: {type(exc).__name__}: {exc}".splitlines()[0])
        return problems[0] if problems else ""

    def problems(self, plugin_name: str) -> list[str]:
        """Why some or all of what plugin ``plugin_name`` registers is unusable (empty: nothing)."""
        if plugin_name in self.failed:
            return [f"rolled back: {self.failed[plugin_name]}"]
        source = self._source(plugin_name)
        return [
            f"conflict: {kind} {name!r} also registered by {', '.join(s for s in sources if s != source)}"
            for kind, names in self.conflicts.items()
            for name, sources in sorted(names.items())
            if source in sources
        ]

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> Any:
        """The spec of ``kind`` called ``name``; an unknown name suggests the closest ones.

        Raises :class:`UnknownNameError` for a name nobody registered and :class:`PluginError`
        for a name that several plugins register (naming every source).
        """
        if name in self.conflicts[kind]:
            raise PluginError(conflict_message(kind, name, self.conflicts[kind][name]))
        try:
            return self.specs[kind][name]
        except KeyError:
            names = self.names(kind)
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.7)
            from fmb.extras import plugin_hint

            hint = plugin_hint(kind, name) or (f"; did you mean {', '.join(close)}?" if close else "")
            raise UnknownNameError(
                f"unknown {kind} {name!r}{hint} (registered: {', '.join(names) or 'none'})"
            ) from None

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def detector(self, name: str) -> DetectorSpec:
        return self.get("detector", name)

    # ---------------------------------------------------------------- loading by name (the one place)
    def load_model(
        self,
        name: str,
        weights: str = "auto",
        device: str = "cpu",
        options: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> Model:
        """Build model ``name`` with its spec's loader.

        The loader receives the user's ``options`` as given (a plugin may infer an unset option from
        the weights, as astropt does for ``size``); core records the resolved options, the spec's
        ``default_options`` overlaid with the user's, on ``model.resolved_options`` (the embedding cache
        key and results.json use them). Raises UnknownNameError / PluginError for a bad name, and
        whatever the plugin raises (ModelError for weights).
        """
        spec = self.model(name)
        options = dict(options or {})
        model = spec.load()(spec, weights=weights, device=device, options=dict(options), seed=seed)
        w = model.weights
        if w.kind == "path" and w.retrained is None and w.location:  # written by `fmb retrain`: its provenance
            from dataclasses import replace

            from fmb.retrained import retrained_provenance

            prov = retrained_provenance(w.location, w.sha256)
            if prov:
                model.weights = replace(w, retrained=prov)
        model.resolved_options = {**spec.default_options, **options}
        # what was asked for: the embedding cache records its key under this request, so that scoring from
        # the cache (`fmb detect`) never needs to build the model (fmb.protocol.embed.record_request)
        model.requested = {"options": options, "weights": weights, "seed": seed, "device": device}
        return model

    def check_dataset_options(self, name: str, options: dict[str, Any]) -> None:
        """Unknown option names of dataset ``name`` are a one-line UsageError listing the valid ones (read
        from the loader's keyword parameters; a loader taking only ``**options`` checks its own)."""
        from fmb.paramschema import check_names, keyword_names

        known = keyword_names(self.dataset(name).load())
        if known is not None:
            check_names(f"dataset {name!r}", known, options)

    def load_dataset(self, name: str, options: dict[str, Any] | None = None) -> Dataset:
        """Open dataset ``name`` with ``options`` (names checked first). The data set records the options
        it was opened with (``requested_options``: the embedding cache keys on them). Whole-dataset checks
        (unique ids) are the protocol's: :func:`fmb.protocol.run.open_dataset`."""
        options = dict(options or {})
        self.check_dataset_options(name, options)
        ds = self.dataset(name).load()(**options)
        ds.name = ds.name or name
        ds.requested_options = dict(options)
        return ds

    def make_detector(self, name: str, params: dict[str, Any] | None = None) -> Detector:
        """Detector ``name`` made with ``params`` (checked against its declared schema when made)."""
        return self.detector(name).load()(**dict(params or {}))


def registry() -> Registry:
    """A fresh view of what the currently registered plugins provide."""
    return Registry()
