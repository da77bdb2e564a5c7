"""What the conformance checks of every kind share: check names, results, the registry, and the
``spec`` and ``light_registration`` checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: kept for compatibility: light_registration no longer uses a deny-list, it measures the import cost
HEAVY_MODULES: tuple[str, ...] = ()
#: registering a plugin (importing its module and calling its hooks) may cost at most this fraction of
#: the time ``import fmb.cli`` takes in the same fresh interpreter, or REGISTRATION_FLOOR_S if that is more
REGISTRATION_BUDGET = 0.5
REGISTRATION_FLOOR_S = 0.1

MODEL_CHECKS = (
    "spec",
    "light_registration",
    "outputs",
    "deterministic",
    "prepared",
    "seeded",
    "batch_independent",
    "no_hidden_state",
    "missing_modality",
    "masked_spectrum",
    "weights_roundtrip",
)
#: the model checks that need a working ``embed`` (skip these for a model that is not implemented yet)
MODEL_EMBEDDING_CHECKS = MODEL_CHECKS[2:]
DATASET_CHECKS = (
    "spec",
    "light_registration",
    "schema",
    "batches",
    "slicing",
    "deterministic",
    "fingerprint_options",
    "labels",
)
DETECTOR_CHECKS = ("spec", "light_registration", "planted_outliers", "deterministic", "rejects_nonfinite")
CHECKS = {"model": MODEL_CHECKS, "dataset": DATASET_CHECKS, "detector": DETECTOR_CHECKS}


class CheckSkipped(Exception):  # noqa: N818 - a signal, not an error
    """A check that does not apply (e.g. the model cannot save its weights)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``passed`` or ``skipped`` (failures raise AssertionError)."""

    kind: str
    name: str
    check: str
    status: str
    reason: str = ""


def _registry() -> Any:
    from fmb.plugins import registry

    return registry()


def _spec(kind: str, name: str) -> Any:
    from fmb.plugins import PluginError, UnknownNameError

    try:
        return _registry().get(kind, name)
    except (UnknownNameError, PluginError) as exc:
        raise AssertionError(f"{exc} (is the plugin installed, or registered for this test?)") from None


# ------------------------------------------------------------------ shared checks


def check_spec(kind: str, name: str) -> None:
    """The spec validates, is of the right type, and its loader names a 'module:attr'."""
    from fmb.specs import SPEC_TYPES, SpecError

    spec = _spec(kind, name)
    assert isinstance(spec, SPEC_TYPES[kind]), f"{kind} {name!r}: spec is a {type(spec).__name__}"
    try:
        spec.validate()
    except SpecError as exc:
        raise AssertionError(f"{kind} {name!r}: invalid spec: {exc}") from None
    assert spec.source, f"{kind} {name!r}: spec has no source (not registered through the plugin manager?)"


def plugin_module(kind: str, name: str) -> str:
    """The module of the plugin object that registered ``kind`` ``name``."""
    from fmb.plugins import HOOKS, get_plugin_manager

    pm = get_plugin_manager()
    for impl in getattr(pm.hook, HOOKS[kind]).get_hookimpls():
        found: list[str] = []

        def register(spec: Any, found: list[str] = found) -> None:
            found.append(getattr(spec, "name", ""))

        try:
            impl.function(register=register)
        except Exception:
            continue
        if name in found:
            plugin = impl.plugin
            return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    raise AssertionError(f"{kind} {name!r}: no registered plugin provides it")


_LIGHT_CODE = r"""
import importlib, importlib.util, json, sys, time
module, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
import fmb.cli  # what every fmb command imports anyway: the baseline
base = time.perf_counter() - t0
sys.stderr.write("@@fmb-registration@@\n")
sys.stderr.flush()
before = set(sys.modules)
t0 = time.perf_counter()
try:
    mod = importlib.import_module(module)
except ModuleNotFoundError:
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
specs = []
targets = [mod] + [v() for v in vars(mod).values() if isinstance(v, type) and v.__module__ == mod.__name__
                   and any(h.startswith("register_") and hasattr(getattr(v, h), "fmb_impl") for h in dir(v))]
for t in targets:
    for hook in ("register_models", "register_datasets", "register_detectors"):
        fn = getattr(t, hook, None)
        if fn is not None and hasattr(fn, "fmb_impl"):
            fn(register=lambda s: specs.append(s.name))
cost = time.perf_counter() - t0
print(json.dumps({"specs": specs, "base": base, "cost": cost, "new": sorted(set(sys.modules) - before)}))
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")


def import_cost_by_package(importtime_log: str) -> dict[str, float]:
    """Seconds of import time per top-level package, from ``python -X importtime`` lines on stderr.

    Each line's *self* time (microseconds) is added to the first dotted part of its module name, so
    the totals do not double count nested imports.
    """
    out: dict[str, float] = {}
    for line in importtime_log.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            top = m.group(2).split(".")[0]
            out[top] = out.get(top, 0.0) + int(m.group(1)) / 1e6
    return out


def check_light_registration(
    kind: str,
    name: str,
    heavy: Iterable[str] = HEAVY_MODULES,
    budget: float = REGISTRATION_BUDGET,
    floor_s: float = REGISTRATION_FLOOR_S,
) -> None:
    """In a fresh interpreter, registering the plugin costs little next to fmb's own start-up.

    The plugin module is imported and its ``register_*`` hooks called after ``import fmb.cli``
    (which every ``fmb`` command pays anyway); the wall time of that must stay within
    ``max(budget * t(import fmb.cli), floor_s)``. On failure the message names the packages it
    pulled in, heaviest first (by ``python -X importtime`` self time). ``heavy`` lists modules that
    must not be imported at all, whatever they cost (none by default).
    """
    module = plugin_module(kind, name)
    path = getattr(sys.modules.get(module), "__file__", "") or ""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _LIGHT_CODE, module, path],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("import time:")]
    assert proc.returncode == 0, (
        f"{kind} {name!r}: importing plugin module {module!r} in a fresh interpreter "
        f"failed: {errors[-1:] or proc.returncode}"
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert name in report["specs"], f"{kind} {name!r}: plugin module {module!r} did not register it"
    new_top = sorted({m.split(".")[0] for m in report["new"]})
    banned = [m for m in heavy if m in new_top or m in report["new"]]
    assert not banned, (
        f"{kind} {name!r}: registering plugin module {module!r} imports {', '.join(banned)}; "
        f"import heavy modules inside the loader"
    )
    limit = max(budget * report["base"], floor_s)
    if report["cost"] > limit:
        per_pkg = import_cost_by_package(proc.stderr.partition("@@fmb-registration@@")[2])
        top = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:5]
        named = ", ".join(f"{pkg} {sec * 1e3:.0f} ms" for pkg, sec in top)
        raise AssertionError(
            f"{kind} {name!r}: registering plugin module {module!r} takes {report['cost']:.2f} s, over the budget "
            f"of {limit:.2f} s ({budget:.0%} of import fmb.cli's {report['base']:.2f} s), and imports "
            f"{len(report['new'])} modules; heaviest: {named}. Every fmb command pays this: import heavy "
            f"modules inside the spec's loader, not in the plugin module"
        )


class Harness:
    """What the three harnesses share: ``run(check)`` runs a shared check (``spec``,
    ``light_registration``) or the harness's own ``check_<name>`` method."""

    kind: str = ""
    name: str

    def run(self, check: str) -> None:
        if check == "spec":
            check_spec(self.kind, self.name)
        elif check == "light_registration":
            check_light_registration(self.kind, self.name)
        else:
            getattr(self, f"check_{check}")()
