"""Conformance checks: does a registered model, dataset or detector honour FMB's protocol?

Plain functions for any test runner::

    from fmb.testing.conformance import check_model, check_dataset, check_detector
    check_model("mymodel")            # raises AssertionError naming the failed check
    check_dataset("mydata", size=64)  # options go to the loader
    check_detector("mydetector", k=3)

Each returns the list of :class:`CheckResult` (passed, or skipped with a reason). For pytest,
:func:`parametrize` makes one test per check::

    @parametrize("model", "mymodel")
    def test_conformance(fmb_check):
        fmb_check()
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C

#: kept for compatibility: light_registration no longer uses a deny-list, it measures the import cost
HEAVY_MODULES: tuple[str, ...] = ()
#: registering a plugin (importing its module and calling its hooks) may cost at most this fraction of
#: the time ``import fmb.cli`` takes in the same fresh interpreter, or REGISTRATION_FLOOR_S if that is more
REGISTRATION_BUDGET = 0.5
REGISTRATION_FLOOR_S = 0.1

MODEL_CHECKS = ("spec", "light_registration", "outputs", "deterministic", "seeded", "batch_independent",
                "no_hidden_state", "missing_modality", "masked_spectrum", "weights_roundtrip")
#: the model checks that need a working ``embed`` (skip these for a model that is not implemented yet)
MODEL_EMBEDDING_CHECKS = MODEL_CHECKS[2:]
DATASET_CHECKS = ("spec", "light_registration", "schema", "batches", "slicing", "deterministic",
                  "fingerprint_options", "labels")
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


def check_light_registration(kind: str, name: str, heavy: Iterable[str] = HEAVY_MODULES,
                             budget: float = REGISTRATION_BUDGET, floor_s: float = REGISTRATION_FLOOR_S) -> None:
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
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _LIGHT_CODE, module, path],
                          capture_output=True, text=True, env=env, timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("import time:")]
    assert proc.returncode == 0, (f"{kind} {name!r}: importing plugin module {module!r} in a fresh interpreter "
                                  f"failed: {errors[-1:] or proc.returncode}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert name in report["specs"], f"{kind} {name!r}: plugin module {module!r} did not register it"
    new_top = sorted({m.split(".")[0] for m in report["new"]})
    banned = [m for m in heavy if m in new_top or m in report["new"]]
    assert not banned, (f"{kind} {name!r}: registering plugin module {module!r} imports {', '.join(banned)}; "
                        f"import heavy modules inside the loader")
    limit = max(budget * report["base"], floor_s)
    if report["cost"] > limit:
        per_pkg = import_cost_by_package(proc.stderr.partition("@@fmb-registration@@")[2])
        top = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:5]
        named = ", ".join(f"{pkg} {sec * 1e3:.0f} ms" for pkg, sec in top)
        raise AssertionError(
            f"{kind} {name!r}: registering plugin module {module!r} takes {report['cost']:.2f} s, over the budget "
            f"of {limit:.2f} s ({budget:.0%} of import fmb.cli's {report['base']:.2f} s), and imports "
            f"{len(report['new'])} modules; heaviest: {named}. Every fmb command pays this: import heavy "
            f"modules inside the spec's loader, not in the plugin module")


# ------------------------------------------------------------------ models


def _nan_equal(a: np.ndarray, b: np.ndarray, rtol: float = 0.0, atol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def toy_batch(size: int = 12, seed: int = 0, **options: Any) -> pa.RecordBatch:
    """One canonical batch of the ``toy`` data set (images and spectra, no missing data)."""
    from fmb.testing.toy import ToyDataset

    return pa.Table.from_batches(list(ToyDataset(size=size, seed=seed, **options).iter_batches(size))
                                 ).combine_chunks().to_batches()[0]


def drop_modality(batch: pa.RecordBatch, modality: str) -> pa.RecordBatch:
    """``batch`` without the columns of ``modality`` (spectrum also drops ``wavelength``)."""
    cols = set(C.MODALITY_COLUMNS[modality]) | ({C.WAVELENGTH} if modality == "spectrum" else {C.RGB})
    keep = [i for i, f in enumerate(batch.schema) if f.name not in cols]
    return pa.RecordBatch.from_arrays([batch.column(i) for i in keep],
                                      schema=pa.schema([batch.schema.field(i) for i in keep]))


def mask_spectra(batch: pa.RecordBatch, rows: Iterable[int]) -> pa.RecordBatch:
    """``batch`` with every spectrum pixel of ``rows`` masked (ivar 0): the modality is missing there."""
    mask = C.column_array(batch, C.MASK, bool).copy()
    ivar = C.column_array(batch, C.IVAR).copy()
    rows = list(rows)
    mask[rows] = True
    ivar[rows] = 0.0
    out = batch
    for col, values in ((C.MASK, mask), (C.IVAR, ivar)):
        idx = out.schema.get_field_index(col)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
        out = out.set_column(idx, out.schema.field(idx), arr)
    return out


@dataclass
class ModelHarness:
    """Loads a registered model once and runs the model checks on it."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    weights: str = "auto"
    seed: int = 0
    batch: pa.RecordBatch | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    _model: Any = None

    @property
    def spec(self) -> Any:
        return _spec("model", self.name)

    def load(self, weights: str | None = None, seed: int | None = None) -> Any:
        _ = self.spec  # an unknown name is an AssertionError naming it
        return _registry().load_model(self.name, weights=weights or self.weights, device="cpu",
                                      options=dict(self.options), seed=self.seed if seed is None else seed)

    @property
    def model(self) -> Any:
        if self._model is None:
            from fmb.models.base import Model, WeightsInfo

            m = self.load()
            assert isinstance(m, Model), f"model {self.name!r}: loader returned {type(m).__name__}, not a Model"
            assert isinstance(m.weights, WeightsInfo), f"model {self.name!r}: .weights is not a WeightsInfo"
            self._model = m
        return self._model

    def data(self) -> pa.RecordBatch:
        if self.batch is None:
            self.batch = toy_batch()
        return self.batch

    def embed(self, batch: pa.RecordBatch, model: Any = None) -> dict[str, np.ndarray]:
        """``model.embed(batch)`` (default: the harness's model), checked for one row per input row."""
        out = (model or self.model).embed(batch)
        assert isinstance(out, dict), f"model {self.name!r}: embed returned {type(out).__name__}, not a dict"
        for key, arr in out.items():
            rows = np.shape(arr)[0] if np.ndim(arr) else None
            assert rows == batch.num_rows, (
                f"model {self.name!r} output {key!r}: {rows} rows for a batch of {batch.num_rows}; embed must return "
                f"exactly one row per input row, in input order (NaN rows where a modality is missing), never drop, "
                f"add or reorder rows")
        return out

    def _random(self, seed: int) -> Any:
        from fmb.errors import FMBError

        try:
            return self.load(weights="random", seed=seed)
        except FMBError as exc:
            raise CheckSkipped(f"model {self.name!r} does not load --weights random ({exc})") from None

    def check_seeded(self) -> None:
        batch, s = self.data(), self.seed
        a = self._random(s)
        if a.weights.kind != "random":
            raise CheckSkipped(f"model {self.name!r}: --weights random gives weights of kind {a.weights.kind!r} "
                               f"(nothing randomly initialised to seed)")
        assert a.weights.seed == s, (f"model {self.name!r}: loaded with --weights random --seed {s} but records "
                                     f"weights.seed {a.weights.seed!r}")
        ea, eb, ec = self.embed(batch, a), self.embed(batch, self._random(s)), self.embed(batch, self._random(s + 1))
        for key in ea:
            assert _nan_equal(ea[key], eb[key], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: two loads with --weights random --seed {s} give different "
                f"embeddings; the weight initialisation is not seeded (seed every generator from the loader's seed)")
        assert any(not _nan_equal(ea[k], ec[k], self.rtol, self.atol) for k in ea if k in ec), (
            f"model {self.name!r}: --weights random with --seed {s} and --seed {s + 1} give identical embeddings; "
            f"the loader ignores its seed at weight initialisation")

    def check_no_hidden_state(self) -> None:
        batch = self.data()
        n = batch.num_rows
        fresh = self.embed(batch, self.load())
        warmed = self.load()
        self.embed(batch.slice(n // 2), warmed)  # another batch first: its statistics differ from the full batch's
        after = self.embed(batch, warmed)
        for key in fresh:
            same = _nan_equal(after[key], fresh[key], self.rtol, self.atol)
            assert same, (
                f"model {self.name!r} output {key!r}: a batch embedded after another batch differs from the same "
                f"batch embedded by a freshly loaded model (max |diff| "
                f"{np.nanmax(np.abs(after[key] - fresh[key])):.3g}); the model keeps state fitted on the batches it "
                f"has seen (e.g. normalisation statistics from the first batch)")

    def _modalities_in(self, batch: pa.RecordBatch) -> set[str]:
        return set(C.modalities_of(batch.schema))

    def expected_outputs(self, batch: pa.RecordBatch) -> set[str]:
        have = self._modalities_in(batch) & set(self.spec.modalities)
        return {o for o in self.spec.outputs if (o in have if o != "joint" else have == set(self.spec.modalities))}

    def check_outputs(self) -> None:
        batch, spec = self.data(), self.spec
        out = self.embed(batch)
        unknown = set(out) - set(spec.outputs)
        assert not unknown, f"model {self.name!r}: undeclared outputs {sorted(unknown)} (spec: {sorted(spec.outputs)})"
        missing = self.expected_outputs(batch) - set(out)
        assert not missing, f"model {self.name!r}: no {sorted(missing)} output for a batch with every modality"
        for key, arr in out.items():
            where = f"model {self.name!r} output {key!r}"
            assert isinstance(arr, np.ndarray), f"{where}: {type(arr).__name__}, not a numpy array"
            assert arr.dtype == np.float32, f"{where}: dtype {arr.dtype}, expected float32"
            assert arr.shape == (batch.num_rows, spec.outputs[key]), (
                f"{where}: shape {arr.shape}, expected ({batch.num_rows}, {spec.outputs[key]})")
            bad = ~np.isfinite(arr).all(axis=1)
            assert not bad.any(), f"{where}: row {int(np.flatnonzero(bad)[0])} is not finite (no data is missing)"

    def check_deterministic(self) -> None:
        batch = self.data()
        a, b = self.embed(batch), self.embed(batch)
        for key in a:
            assert _nan_equal(a[key], b[key]), f"model {self.name!r} output {key!r}: same batch twice differs"

    def check_batch_independent(self) -> None:
        batch = self.data()
        full = self.embed(batch)
        n = batch.num_rows
        order = np.random.default_rng(0).permutation(n)
        shuffled = self.embed(batch.take(pa.array(order)))
        for key in full:
            assert _nan_equal(shuffled[key], full[key][order], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: a row's embedding changes when its batch mates are reordered")
        for i in sorted({0, n // 2, n - 1}):
            alone = self.embed(batch.slice(i, 1))
            for key in full:
                assert _nan_equal(alone[key][0], full[key][i], self.rtol, self.atol), (
                    f"model {self.name!r} output {key!r}: row {i} embedded alone differs from row {i} in a "
                    f"batch of {n} (max |diff| {np.nanmax(np.abs(alone[key][0] - full[key][i])):.3g})")

    def check_missing_modality(self) -> None:
        batch, spec = self.data(), self.spec
        full = self.embed(batch)
        for gone in C.modalities_of(batch.schema):
            if set(spec.modalities) == {gone}:
                continue  # a one-modality model has nothing to embed without it
            part = drop_modality(batch, gone)
            out = self.embed(part)
            for key in (gone, "joint"):
                if key in out:
                    assert np.isnan(out[key]).all(), (
                        f"model {self.name!r}: a batch without {gone!r} columns gives a {key!r} output that is not "
                        f"all NaN; give no output (or NaN rows) for a missing modality, never zeros or made-up values")
            for key in self.expected_outputs(part):
                assert key in out, f"model {self.name!r}: a batch without {gone!r} gives no {key!r} output"
                assert _nan_equal(out[key], full[key], self.rtol, self.atol), (
                    f"model {self.name!r}: output {key!r} changes when the {gone!r} columns are absent")

    def check_masked_spectrum(self) -> None:
        spec = self.spec
        if "spectrum" not in spec.modalities:
            raise CheckSkipped(f"model {self.name!r} does not read spectra")
        batch = self.data()
        n = batch.num_rows
        rows = [0, n // 2]
        full = self.embed(batch)
        out = self.embed(mask_spectra(batch, rows))
        keep = np.setdiff1d(np.arange(n), rows)
        for key in ("spectrum", "joint"):
            if key not in spec.outputs:
                continue
            assert key in out, f"model {self.name!r}: no {key!r} output when some spectra are entirely masked"
            for i in rows:
                assert np.isnan(out[key][i]).all(), (
                    f"model {self.name!r} output {key!r}: row {i} has an entirely masked spectrum but its embedding "
                    f"is not all NaN (a missing modality must give NaN rows, never zeros)")
            assert _nan_equal(out[key][keep], full[key][keep], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: unmasked rows change when other rows' spectra are masked")
        if "image" in out:
            assert _nan_equal(out["image"], full["image"], self.rtol, self.atol), (
                f"model {self.name!r}: the image output changes when spectra are masked")

    def _weights_source(self, batch: pa.RecordBatch) -> Any:
        """A model whose weights differ from the loader's default where possible (random, another seed).

        Saving *these* and loading them back tells a loader that reads ``--weights PATH`` from one
        that ignores the path and builds its default weights while recording ``kind: path``.
        """
        from fmb.errors import FMBError

        try:
            other = self.load(weights="random", seed=self.seed + 1009)
        except FMBError:
            return self.model
        mine, theirs = self.embed(batch), self.embed(batch, other)
        if other.can_save_weights and any(
                not _nan_equal(mine[k], theirs[k], self.rtol, self.atol) for k in mine if k in theirs):
            return other
        return self.model

    def check_weights_roundtrip(self) -> None:
        model = self.model
        if not model.can_save_weights:
            raise CheckSkipped(f"model {self.name!r} has no save_weights(path): weights round trip not applicable")
        batch = self.data()
        source = self._weights_source(batch)
        with tempfile.TemporaryDirectory(prefix="fmb-weights-") as tmp:
            target = Path(tmp) / "weights"
            written = source.save_weights(target)
            path = Path(written) if written is not None else target
            assert path.exists(), f"model {self.name!r}: save_weights({target}) wrote nothing at {path}"
            again = self.load(weights=str(path))
            assert again.weights.kind == "path", (
                f"model {self.name!r}: loaded from --weights {path} but weights.kind is {again.weights.kind!r}")
            a, b = self.embed(batch, source), self.embed(batch, again)
        default = self.embed(batch) if source is not model else None
        assert set(a) == set(b), f"model {self.name!r}: reloaded weights give outputs {sorted(b)}, not {sorted(a)}"
        for key in a:
            if _nan_equal(a[key], b[key], self.rtol, self.atol):
                continue
            if default is not None and _nan_equal(b[key], default[key], self.rtol, self.atol):
                raise AssertionError(
                    f"model {self.name!r} output {key!r}: loading --weights {path.name} gives the embeddings of the "
                    f"default weights, not of the saved ones; the loader ignores --weights PATH (yet records "
                    f"kind 'path')")
            raise AssertionError(
                f"model {self.name!r} output {key!r}: embeddings differ after save_weights and --weights PATH")

    def run(self, check: str) -> None:
        if check == "spec":
            check_spec("model", self.name)
        elif check == "light_registration":
            check_light_registration("model", self.name)
        else:
            getattr(self, f"check_{check}")()


# ------------------------------------------------------------------ datasets


@dataclass
class DatasetHarness:
    """Opens a registered dataset once and runs the dataset checks on it."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    max_rows: int = 256
    _ds: Any = None

    @property
    def spec(self) -> Any:
        return _spec("dataset", self.name)

    def open(self) -> Any:
        from fmb.datasets.base import Dataset

        _ = self.spec  # an unknown name is an AssertionError naming it
        ds = _registry().load_dataset(self.name, self.options)
        assert isinstance(ds, Dataset), f"dataset {self.name!r}: loader returned {type(ds).__name__}, not a Dataset"
        return ds

    @property
    def ds(self) -> Any:
        if self._ds is None:
            self._ds = self.open()
        return self._ds

    @property
    def rows(self) -> int:
        return min(len(self.ds), self.max_rows)

    def table(self, batch_size: int = 64, start: int = 0, stop: int | None = None) -> pa.Table:
        batches = list(self.ds.iter_batches(batch_size=batch_size, start=start, stop=stop))
        for b in batches:
            assert isinstance(b, pa.RecordBatch), f"dataset {self.name!r}: yielded {type(b).__name__}"
        return pa.Table.from_batches(batches, schema=self.ds.schema)

    def check_schema(self) -> None:
        ds, spec, where = self.ds, self.spec, f"dataset {self.name!r}"
        schema = ds.schema
        assert len(ds) > 0, f"{where}: no objects"
        assert C.OBJECT_ID in schema.names, f"{where}: no {C.OBJECT_ID!r} column"
        idt = schema.field(C.OBJECT_ID).type
        assert pa.types.is_integer(idt) or pa.types.is_string(idt) or pa.types.is_large_string(idt), (
            f"{where}: object_id has type {idt}, expected an integer or a string")
        missing = set(spec.modalities) - set(ds.modalities)
        assert not missing, f"{where}: spec declares modalities {sorted(missing)} that the schema lacks"
        if C.IMAGE in schema.names:
            fld = schema.field(C.IMAGE)
            assert pa.types.is_fixed_size_list(fld.type) and fld.type.value_type == pa.float32(), (
                f"{where}: image must be a fixed_size_list of float32, got {fld.type}")
            shape = C.field_shape(fld)
            assert len(shape) == 3 and int(np.prod(shape)) == fld.type.list_size, (
                f"{where}: image shape metadata {shape} does not match the list size {fld.type.list_size}")
            bands = C.image_bands(schema)
            assert len(bands) == shape[0] and all(bands), f"{where}: bands metadata {bands} vs shape {shape}"
            assert C.field_meta(fld, "pixel_scale") is not None, f"{where}: image has no pixel_scale metadata"
        if C.FLUX in schema.names:
            sizes = {}
            for col, typ in ((C.FLUX, pa.float32()), (C.IVAR, pa.float32()), (C.MASK, pa.bool_())):
                assert col in schema.names, f"{where}: {col!r} column missing next to flux"
                t = schema.field(col).type
                assert pa.types.is_fixed_size_list(t) and t.value_type == typ, (
                    f"{where}: {col!r} must be a fixed_size_list of {typ}, got {t}")
                sizes[col] = t.list_size
            assert len(set(sizes.values())) == 1, f"{where}: spectrum columns have different lengths {sizes}"
            grid = C.field_meta(schema.field(C.FLUX), "wavelength_start")
            assert grid is not None or C.WAVELENGTH in schema.names, f"{where}: spectrum has no wavelength grid"
        if spec.has_labels:
            assert C.has_labels(schema), f"{where}: spec says has_labels but there is no {C.IS_ANOMALY!r} column"
        expected = {C.IS_ANOMALY: pa.bool_(), C.ANOMALY_CLASS: pa.string(),
                    **{p: pa.float32() for p in C.PHYSICAL}}
        for col, typ in expected.items():
            if col in schema.names:
                assert schema.field(col).type == typ, f"{where}: {col!r} has type {schema.field(col).type}, not {typ}"

    def check_batches(self) -> None:
        ds, where = self.ds, f"dataset {self.name!r}"
        for b in ds.iter_batches(batch_size=16, stop=self.rows):
            assert b.schema.equals(ds.schema), f"{where}: a batch's schema differs from Dataset.schema"
            for col in (C.IMAGE, C.FLUX):
                if col in b.schema.names:
                    C.column_array(b, col)  # raises on nulls or a shape mismatch
        ids = self.table(64, stop=None if len(ds) <= self.max_rows else self.rows).column(C.OBJECT_ID).to_pylist()
        if len(ds) <= self.max_rows:
            assert len(ids) == len(ds), f"{where}: iter_batches yields {len(ids)} rows but len() is {len(ds)}"
        assert None not in ids, f"{where}: null object_id"
        assert len(set(ids)) == len(ids), f"{where}: object_id values are not unique"

    def check_slicing(self) -> None:
        where, n = f"dataset {self.name!r}", self.rows
        full = self.table(64, stop=n)
        ids = full.column(C.OBJECT_ID).to_pylist()
        assert len(ids) == n, f"{where}: stop={n} gives {len(ids)} rows"
        for size in (1, 7):
            stop = min(n, 3 * size + 1)
            got = [b.num_rows for b in self.ds.iter_batches(batch_size=size, stop=stop)]
            assert all(0 < k <= size for k in got), f"{where}: batch_size={size} gives batches of {got} rows"
            assert sum(got) == stop, f"{where}: batch_size={size} loses or adds rows"
            diff = first_difference(self.table(size, stop=stop), full.slice(0, stop))
            assert diff is None, (f"{where}: rows read in batches of {size} differ from the same rows read in "
                                  f"batches of 64 ({diff}); a row's values must not depend on how it is batched")
        lo, hi = n // 4, max(n // 4 + 1, 3 * n // 4)
        part_table = self.table(5, start=lo, stop=hi)
        part = part_table.column(C.OBJECT_ID).to_pylist()
        assert part == ids[lo:hi], f"{where}: iter_batches(start={lo}, stop={hi}) does not give rows {lo}..{hi - 1}"
        diff = first_difference(part_table, full.slice(lo, hi - lo))
        assert diff is None, (f"{where}: iter_batches(start={lo}, stop={hi}) gives the right ids but other values "
                              f"than rows {lo}..{hi - 1} read from the start ({diff}, row counted from {lo})")
        assert self.table(8, start=lo, stop=lo).num_rows == 0, f"{where}: start == stop must yield no rows"
        tail = self.table(8, start=len(self.ds) - 1, stop=len(self.ds) + 10).num_rows
        assert tail == 1, f"{where}: a stop past the end must be clipped (got {tail} rows for the last one)"

    def check_deterministic(self) -> None:
        where, n = f"dataset {self.name!r}", min(self.rows, 32)
        a, b = self.table(16, stop=n), self.table(16, stop=n)
        assert a.equals(b), f"{where}: iterating twice gives different data"
        fp = self.ds.fingerprint
        assert isinstance(fp, str) and fp and all(c in "0123456789abcdef" for c in fp.lower()), (
            f"{where}: fingerprint {fp!r} is not a hex string")
        again = self.open()
        assert again.fingerprint == fp, f"{where}: fingerprint changes when opened again with the same options"
        assert self.table(16, stop=n).equals(pa.Table.from_batches(list(again.iter_batches(16, stop=n)),
                                                                  schema=again.schema)), (
            f"{where}: opening again with the same options gives different data")

    def _sample(self, ds: Any) -> tuple[int, pa.Table]:
        n = min(len(ds), 32)
        return len(ds), pa.Table.from_batches(list(ds.iter_batches(16, stop=n)), schema=ds.schema)

    def check_fingerprint_options(self) -> None:
        """Each option given, varied: where the data change, the fingerprint changes too."""
        where, fp = f"dataset {self.name!r}", self.ds.fingerprint
        base = self._sample(self.ds)
        tried = []
        for key, value in sorted(self.options.items()):
            for new in _variants(value):
                try:
                    other = _registry().load_dataset(self.name, {**self.options, key: new})
                except Exception:  # an invalid variant says nothing about the fingerprint
                    continue
                size, table = self._sample(other)
                if size == base[0] and table.schema.equals(base[1].schema) and first_difference(table, base[1]) is None:
                    continue  # same data: the fingerprint may stay
                tried.append(key)
                assert other.fingerprint != fp, (
                    f"{where}: options {key}={value!r} and {key}={new!r} give different data but the same fingerprint "
                    f"{fp[:12]}...; the fingerprint must cover every option that changes the data (the embedding "
                    f"cache would reuse the wrong embeddings)")
                break
        if not tried:
            raise CheckSkipped(f"{where}: no option given changes the data when varied (pass the options a user "
                               f"sets, e.g. check_dataset({self.name!r}, size=64, seed=0))")

    def check_labels(self) -> None:
        if not self.ds.has_labels:
            raise CheckSkipped(f"dataset {self.name!r} has no labels")
        t, where = self.table(64, stop=self.rows), f"dataset {self.name!r}"
        assert t.column(C.IS_ANOMALY).null_count == 0, f"{where}: is_anomaly has nulls"
        if C.ANOMALY_CLASS in t.column_names:
            flags = np.asarray(t.column(C.IS_ANOMALY).to_pylist(), bool)
            normal = np.asarray([c == C.NORMAL_CLASS for c in t.column(C.ANOMALY_CLASS).to_pylist()])
            assert (flags == ~normal).all(), (
                f"{where}: is_anomaly disagrees with anomaly_class ({C.NORMAL_CLASS!r} for normal objects) "
                f"in row {int(np.flatnonzero(flags == normal)[0])}")

    def run(self, check: str) -> None:
        if check == "spec":
            check_spec("dataset", self.name)
        elif check == "light_registration":
            check_light_registration("dataset", self.name)
        else:
            getattr(self, f"check_{check}")()


def _variants(value: Any) -> list[Any]:
    """Other values of an option of the same type, to vary it (strings and others: none)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 1.5 + 0.1, value / 2]
    return []


def first_difference(a: pa.Table, b: pa.Table, rtol: float = 1e-6, atol: float = 0.0) -> str | None:
    """Where tables ``a`` and ``b`` first differ in content ("column 'x', row i"), or None if they agree.

    Numeric (and fixed-size list of numeric) columns compare with ``numpy.allclose`` (NaN equal to NaN);
    other columns exactly.
    """
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    for col in a.column_names:
        if col not in b.column_names:
            return f"column {col!r} missing"
        x, y = a.column(col).combine_chunks(), b.column(col).combine_chunks()
        if pa.types.is_fixed_size_list(x.type) and x.null_count == 0 and y.null_count == 0:
            x, y = (np.asarray(v.flatten()).reshape(len(v), -1) for v in (x, y))
        elif pa.types.is_integer(x.type) or pa.types.is_floating(x.type):
            x, y = (np.asarray(v.to_numpy(zero_copy_only=False)).reshape(len(v), 1) for v in (x, y))
        else:
            xs, ys = x.to_pylist(), y.to_pylist()
            bad = [i for i, (p, q) in enumerate(zip(xs, ys)) if p != q]
            if bad:
                return f"column {col!r}, row {bad[0]}"
            continue
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number) and x.shape == y.shape:
            close = np.isclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
            rows = np.flatnonzero(~close.all(axis=1))
        else:
            rows = np.flatnonzero([not np.array_equal(p, q) for p, q in zip(x, y)]) if len(x) == len(y) else [0]
        if len(rows):
            return f"column {col!r}, row {int(rows[0])}"
    return None


# ------------------------------------------------------------------ detectors


def planted_outliers(n: int = 300, dim: int = 8, n_out: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A correlated Gaussian cloud with ``n_out`` rows pushed far out; returns ``X`` and the outlier mask."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.eye(dim)
    X = rng.normal(size=(n, dim)) @ A
    idx = rng.choice(n, n_out, replace=False)
    direction = rng.normal(size=(n_out, dim))
    X[idx] += 8.0 * direction / np.linalg.norm(direction, axis=1, keepdims=True) * X.std()
    is_out = np.zeros(n, bool)
    is_out[idx] = True
    return X.astype(np.float32), is_out


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half)."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    pos = labels.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass
class DetectorHarness:
    """Makes a registered detector and runs the detector checks on it."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    min_auroc: float = 0.95

    def make(self) -> Any:
        from fmb.detectors.base import Detector

        _spec("detector", self.name)
        det = _registry().make_detector(self.name, self.params)
        assert isinstance(det, Detector), f"detector {self.name!r}: loader returned {type(det).__name__}"
        return det

    def scores(self, X: np.ndarray, seed: int = 0) -> np.ndarray:
        s = np.asarray(self.make().fit_score(X, seed=seed))
        where = f"detector {self.name!r}"
        assert s.shape == (X.shape[0],), f"{where}: {s.shape} scores for {X.shape[0]} objects"
        assert np.isfinite(s).all(), f"{where}: scores are not all finite"
        return s

    def check_planted_outliers(self) -> None:
        X, is_out = planted_outliers()
        a = auroc(self.scores(X), is_out)
        assert a >= self.min_auroc, (f"detector {self.name!r}: planted outliers score AUROC {a:.3f} < "
                                     f"{self.min_auroc} (are higher scores more anomalous?)")

    def check_deterministic(self) -> None:
        X, _ = planted_outliers(seed=1)
        a, b = self.scores(X, seed=3), self.scores(X, seed=3)
        assert np.array_equal(a, b), f"detector {self.name!r}: same data and seed twice gives different scores"

    def check_rejects_nonfinite(self) -> None:
        from fmb.errors import FMBError

        X, _ = planted_outliers(n=60)
        for bad in (np.nan, np.inf):
            Y = X.copy()
            Y[5, 2] = bad
            try:
                self.make().fit_score(Y, seed=0)
            except FMBError:
                continue
            except Exception as exc:
                raise AssertionError(f"detector {self.name!r}: a {bad} input raises {type(exc).__name__}, not a "
                                     f"one-line fmb.errors.DetectorError (use Detector.check_input)") from exc
            raise AssertionError(f"detector {self.name!r}: accepts a {bad} in its input; reject it with "
                                 f"fmb.errors.DetectorError (Detector.check_input does)")

    def run(self, check: str) -> None:
        if check == "spec":
            check_spec("detector", self.name)
        elif check == "light_registration":
            check_light_registration("detector", self.name)
        else:
            getattr(self, f"check_{check}")()


# ------------------------------------------------------------------ entry points


def harness(kind: str, name: str, **options: Any) -> Any:
    """The harness for ``kind``; ``options`` go to the model loader, dataset loader or detector."""
    if kind == "model":
        return ModelHarness(name, options=options)
    if kind == "dataset":
        return DatasetHarness(name, options=options)
    if kind == "detector":
        return DetectorHarness(name, params=options)
    raise ValueError(f"unknown kind {kind!r} (expected model, dataset or detector)")


def run_checks(h: Any, kind: str, checks: Iterable[str] | None = None,
               skip: dict[str, str] | None = None) -> list[CheckResult]:
    """Run ``checks`` (default: all for ``kind``) on harness ``h``; the first failure raises AssertionError."""
    skip = skip or {}
    results = []
    for check in checks or CHECKS[kind]:
        if check not in CHECKS[kind]:
            raise ValueError(f"unknown {kind} check {check!r} (known: {', '.join(CHECKS[kind])})")
        if check in skip:
            results.append(CheckResult(kind, h.name, check, "skipped", skip[check]))
            continue
        try:
            h.run(check)
        except CheckSkipped as exc:
            results.append(CheckResult(kind, h.name, check, "skipped", str(exc)))
            continue
        except AssertionError as exc:
            raise AssertionError(f"[{kind} conformance: {check}] {exc}") from exc
        results.append(CheckResult(kind, h.name, check, "passed"))
    return results


def check_model(name: str, *, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None,
                batch: pa.RecordBatch | None = None, weights: str = "auto", seed: int = 0,
                **options: Any) -> list[CheckResult]:
    """Check a registered model; ``batch`` replaces the toy batch (it must hold every modality)."""
    h = ModelHarness(name, options=options, weights=weights, seed=seed, batch=batch)
    return run_checks(h, "model", checks, skip)


def check_dataset(name: str, *, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None,
                  **options: Any) -> list[CheckResult]:
    """Check a registered dataset opened with ``options``."""
    return run_checks(DatasetHarness(name, options=options), "dataset", checks, skip)


def check_detector(name: str, *, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None,
                   **params: Any) -> list[CheckResult]:
    """Check a registered detector made with ``params``."""
    return run_checks(DetectorHarness(name, params=params), "detector", checks, skip)


@dataclass
class ConformanceCase:
    """One check on one registered thing; calling it runs the check (pytest: skips become skips)."""

    kind: str
    name: str
    check: str
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> CheckResult:
        result = run_checks(harness(self.kind, self.name, **self.options), self.kind, [self.check])[0]
        if result.status == "skipped":
            import pytest

            pytest.skip(result.reason)
        return result

    def __repr__(self) -> str:
        return f"{self.kind}:{self.name}:{self.check}"


def cases(kind: str, name: str, *, skip: dict[str, str] | None = None, checks: Iterable[str] | None = None,
          **options: Any) -> list[Any]:
    """``pytest.param`` objects, one per check; those in ``skip`` carry ``pytest.mark.skip(reason)``."""
    import pytest

    skip = skip or {}
    out = []
    for check in checks or CHECKS[kind]:
        marks = [pytest.mark.skip(reason=skip[check])] if check in skip else []
        out.append(pytest.param(ConformanceCase(kind, name, check, options), marks=marks, id=f"{name}-{check}"))
    return out


def parametrize(kind: str, name: str, *, skip: dict[str, str] | None = None,
                checks: Iterable[str] | None = None, argname: str = "fmb_check", **options: Any) -> Callable:
    """``@parametrize("model", "mymodel")`` on ``def test_x(fmb_check): fmb_check()``: one test per check."""
    import pytest

    return pytest.mark.parametrize(argname, cases(kind, name, skip=skip, checks=checks, **options))
