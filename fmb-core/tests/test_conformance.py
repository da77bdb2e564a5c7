"""The conformance kit: built-ins pass it, and each check catches the fault it is for."""

import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fmb import hookimpl
from fmb.data import canonical as C
from fmb.detectors.base import Detector
from fmb.models.base import Model, WeightsInfo
from fmb.models.baseline import BaselineModel
from fmb.models.baseline import load_model as load_baseline
from fmb.specs import DatasetSpec, DetectorSpec, ModelSpec
from fmb.testing import registered_plugin
from fmb.testing.conformance import (
    CHECKS,
    MODEL_EMBEDDING_CHECKS,
    check_dataset,
    check_detector,
    check_light_registration,
    check_model,
    first_difference,
    parametrize,
)
from fmb.testing.conformance import import_cost_by_package as check_cost
from fmb.testing.toy import ToyDataset


@parametrize("model", "baseline")
def test_baseline_model(fmb_check):
    fmb_check()


@pytest.mark.parametrize(("name", "params"), [("iforest", {"n_estimators": 100}), ("knn", {}), ("ecod", {})])
def test_builtin_detectors(name, params):
    results = check_detector(name, **params)
    assert [r.check for r in results if r.status == "passed"] == list(CHECKS["detector"])


@parametrize("dataset", "toy", size=24, seed=0)
def test_toy_dataset(fmb_check, toy):
    fmb_check()


def test_synthetic_dataset():
    check_dataset("synthetic", size=64, checks=["schema", "slicing", "labels"])


def test_baseline_has_no_weights_to_round_trip():
    results = {r.check: r for r in check_model("baseline", checks=["weights_roundtrip"])}
    assert results["weights_roundtrip"].status == "skipped"
    assert "save_weights" in results["weights_roundtrip"].reason


def test_skip_is_reported_not_run():
    results = check_model("no-such-model", checks=["outputs"], skip={"outputs": "not implemented yet"})
    assert [(r.status, r.reason) for r in results] == [("skipped", "not implemented yet")]
    assert set(MODEL_EMBEDDING_CHECKS) < set(CHECKS["model"])


# ---------------------------------------------------------------- faulty plugins are caught

FAULTS = {
    "zeros-when-masked": lambda out, batch: {k: np.nan_to_num(v) for k, v in out.items()},
    "batch-dependent": lambda out, batch: {k: v - np.nanmean(v, axis=0) for k, v in out.items()},
    "noisy": lambda out, batch: {
        k: v + np.random.default_rng().normal(size=v.shape).astype(v.dtype) for k, v in out.items()
    },
    "float64": lambda out, batch: {k: v.astype(np.float64) for k, v in out.items()},
    "joint-without-spectrum": lambda out, batch: {
        **out,
        "joint": np.zeros((batch.num_rows, 1152), np.float32),
        "spectrum": np.zeros((batch.num_rows, 128), np.float32),
    },
}
CAUGHT_BY = {
    "zeros-when-masked": "masked_spectrum",
    "batch-dependent": "batch_independent",
    "noisy": "deterministic",
    "float64": "outputs",
    "joint-without-spectrum": "missing_modality",
}


class FaultyModel(BaselineModel):
    fault = "noisy"

    def embed(self, batch):
        return FAULTS[self.fault](super().embed(batch), batch)

    def save_weights(self, path):  # writes nothing
        return path


def _faulty_loader(fault):
    def load(spec, weights="auto", device="cpu", options=None, seed=0):
        m = load_baseline(spec)
        m.__class__ = type(f"Faulty_{fault}", (FaultyModel,), {"fault": fault})
        return m

    return load


@pytest.fixture
def faulty(monkeypatch):
    mod = types.ModuleType("fmb_test_faulty")
    for i, fault in enumerate(FAULTS):
        setattr(mod, f"load_{i}", _faulty_loader(fault))
    mod.make_flipped = lambda **p: FlippedDetector()
    mod.make_lenient = lambda **p: LenientDetector()
    monkeypatch.setitem(sys.modules, "fmb_test_faulty", mod)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            for i, fault in enumerate(FAULTS):
                register(
                    ModelSpec(
                        name=fault,
                        description="faulty",
                        loader=f"fmb_test_faulty:load_{i}",
                        modalities=("image", "spectrum"),
                        outputs={"image": 1024, "spectrum": 128, "joint": 1152},
                    )
                )

        @hookimpl
        def register_detectors(self, register):
            for name in ("flipped", "lenient"):
                register(DetectorSpec(name=name, description="faulty", loader=f"fmb_test_faulty:make_{name}"))

    with registered_plugin(Plugin(), "faulty"):
        yield


class FlippedDetector(Detector):
    name = "flipped"

    def fit_score(self, X, seed=0):
        X = self.check_input(X)
        return -np.linalg.norm(X - X.mean(0), axis=1)  # lower = more anomalous: wrong


class LenientDetector(Detector):
    name = "lenient"

    def fit_score(self, X, seed=0):
        return np.nan_to_num(np.linalg.norm(X - np.nanmean(X, 0), axis=1))  # no check_input


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faulty_model_is_caught(faulty, fault):
    check = CAUGHT_BY[fault]
    with pytest.raises(AssertionError, match=rf"\[model conformance: {check}\]"):
        check_model(fault, checks=[check])


def test_weights_that_do_not_round_trip_are_caught(faulty):
    with pytest.raises(AssertionError, match=r"save_weights.*wrote nothing"):
        check_model("noisy", checks=["weights_roundtrip"])


def test_wrong_sign_detector_is_caught(faulty):
    with pytest.raises(AssertionError, match="higher scores more anomalous"):
        check_detector("flipped", checks=["planted_outliers"])


def test_detector_accepting_nan_is_caught(faulty):
    with pytest.raises(AssertionError, match="accepts a nan"):
        check_detector("lenient", checks=["rejects_nonfinite"])


def test_heavy_registration_is_caught_by_its_import_cost(tmp_path, monkeypatch):
    # no deny-list: a module nobody has heard of that is slow to import is caught and named
    (tmp_path / "fmb_fake_heavy.py").write_text("import time\ntime.sleep(1.5)\n")
    (tmp_path / "fmb_heavy_plugin.py").write_text(
        "import fmb_fake_heavy\nfrom fmb import hookimpl\nfrom fmb.specs import ModelSpec\n\n"
        "@hookimpl\ndef register_models(register):\n"
        "    register(ModelSpec(name='heavy', description='x', loader='fmb_heavy_plugin:x',\n"
        "                       modalities=('image',), outputs={'image': 2}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import fmb_heavy_plugin

    with (
        registered_plugin(fmb_heavy_plugin, "heavy-plugin"),
        pytest.raises(
            AssertionError,
            match=r"registering plugin module 'fmb_heavy_plugin' takes .* over the budget .*"
            r"heaviest: fmb_fake_heavy \d+ ms",
        ),
    ):
        check_light_registration("model", "heavy")
    monkeypatch.delitem(sys.modules, "fmb_heavy_plugin")
    monkeypatch.delitem(sys.modules, "fmb_fake_heavy")


def test_import_cost_by_package_adds_self_times():
    log = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |     sklearn.utils\n"
        "import time:       250 |        350 |   sklearn\n"
        "import time:        40 |         40 | json\n"
    )
    assert check_cost(log) == {"sklearn": 350e-6, "json": 40e-6}


class SlicingIgnored(ToyDataset):
    def iter_batches(self, batch_size=256, start=0, stop=None):
        yield from super().iter_batches(batch_size, 0, stop)  # ignores start


def test_dataset_ignoring_start_is_caught(monkeypatch):
    mod = types.ModuleType("fmb_test_faulty_ds")
    mod.open_dataset = lambda **o: SlicingIgnored(size=32)
    monkeypatch.setitem(sys.modules, "fmb_test_faulty_ds", mod)

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            from fmb.specs import DatasetSpec

            register(
                DatasetSpec(
                    name="noslice",
                    description="x",
                    loader="fmb_test_faulty_ds:open_dataset",
                    modalities=("image", "spectrum"),
                )
            )

    with registered_plugin(Plugin(), "noslice"):
        check_dataset("noslice", checks=["schema", "batches"])
        with pytest.raises(AssertionError, match=r"start=8, stop=24"):
            check_dataset("noslice", checks=["slicing"])


# ---------------------------------------------------------------- planted bugs a plugin author could make


class ProjModel(Model):
    """A random projection of the image pixels; ``bug`` plants one fault."""

    def __init__(self, spec, weights, matrix, bug):
        super().__init__(spec, weights, {})
        self.matrix, self.bug, self.centre = matrix, bug, None

    def embed(self, batch):
        x = C.column_array(batch, C.IMAGE).reshape(batch.num_rows, -1).astype(np.float64)
        if self.bug == "first-batch-state":
            if self.centre is None:
                self.centre = x.mean(axis=0)  # fitted on the first batch seen, kept for the next ones
            x = x - self.centre
        return {"image": (x @ self.matrix).astype(np.float32)}

    def save_weights(self, path):
        path = Path(path).with_suffix(".npy")
        np.save(path, self.matrix)
        return path


def _proj_loader(bug):
    def load(spec, weights="auto", device="cpu", options=None, seed=0):
        def matrix(s):
            return np.random.default_rng(s).normal(size=(4 * 16 * 16, 8)) / 32

        if weights == "auto":
            return ProjModel(spec, WeightsInfo(kind="none"), matrix(0), bug)
        if weights == "random":
            s = {"seed-ignored": 1234, "seed-unseeded": None}.get(bug, seed) if bug.startswith("seed") else seed
            return ProjModel(spec, WeightsInfo(kind="random", seed=seed), matrix(s), bug)
        m = matrix(0) if bug == "path-ignored" else np.load(weights)  # the bug: default weights, recorded as path
        return ProjModel(spec, WeightsInfo(kind="path", location=weights), m, bug)

    return load


PROJ_BUGS = ("none", "seed-ignored", "seed-unseeded", "path-ignored", "first-batch-state")


@pytest.fixture
def proj_models(monkeypatch):
    mod = types.ModuleType("fmb_test_proj")
    for bug in PROJ_BUGS:
        setattr(mod, f"load_{bug.replace('-', '_')}", _proj_loader(bug))
    monkeypatch.setitem(sys.modules, "fmb_test_proj", mod)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            for bug in PROJ_BUGS:
                loader = f"fmb_test_proj:load_{bug.replace('-', '_')}"
                register(
                    ModelSpec(
                        name=f"proj-{bug}", description="x", loader=loader, modalities=("image",), outputs={"image": 8}
                    )
                )

    with registered_plugin(Plugin(), "proj"):
        yield


def test_correct_projection_model_passes_the_new_checks(proj_models):
    results = check_model("proj-none", checks=["seeded", "no_hidden_state", "weights_roundtrip", "batch_independent"])
    assert [r.status for r in results] == ["passed"] * 4


@pytest.mark.parametrize(
    ("bug", "check", "cause"),
    [
        ("seed-ignored", "seeded", "the loader ignores its seed at weight initialisation"),
        ("seed-unseeded", "seeded", "the weight initialisation is not seeded"),
        ("path-ignored", "weights_roundtrip", r"the loader ignores --weights PATH \(yet records kind 'path'\)"),
        ("first-batch-state", "no_hidden_state", "keeps state fitted on the batches it has seen"),
    ],
)
def test_planted_model_bug_is_caught_naming_its_cause(proj_models, bug, check, cause):
    with pytest.raises(AssertionError, match=rf"\[model conformance: {check}\] model 'proj-{bug}'.*{cause}"):
        check_model(f"proj-{bug}", checks=[check])


def test_model_dropping_rows_is_reported_as_dropped_rows_not_nan(faulty_drop):
    with pytest.raises(
        AssertionError,
        match=r"masked_spectrum\] model 'drops-masked' output 'spectrum': 10 rows for "
        r"a batch of 12; embed must return exactly one row per input row",
    ) as e:
        check_model("drops-masked", checks=["masked_spectrum"])
    assert "NaN" not in str(e.value).split("(")[0]


@pytest.fixture
def faulty_drop(monkeypatch):
    def load(spec, weights="auto", device="cpu", options=None, seed=0):
        m = load_baseline(spec)

        class Drops(BaselineModel):
            def embed(self, batch):
                out = super().embed(batch)
                keep = ~C.column_array(batch, C.MASK, bool).all(axis=1)
                return {k: (v[keep] if k != "image" else v) for k, v in out.items()}

        m.__class__ = Drops
        return m

    mod = types.ModuleType("fmb_test_drop")
    mod.load = load
    monkeypatch.setitem(sys.modules, "fmb_test_drop", mod)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(
                ModelSpec(
                    name="drops-masked",
                    description="x",
                    loader="fmb_test_drop:load",
                    modalities=("image", "spectrum"),
                    outputs={"image": 1024, "spectrum": 128, "joint": 1152},
                )
            )

    with registered_plugin(Plugin(), "drops"):
        yield


class BatchCentred(ToyDataset):
    """Each batch's images minus that batch's mean: a row's values depend on its batch mates."""

    def iter_batches(self, batch_size=256, start=0, stop=None):
        for b in super().iter_batches(batch_size, start, stop):
            img = C.column_array(b, C.IMAGE)
            img = (img - img.mean(axis=0)).astype(np.float32)
            i = b.schema.get_field_index(C.IMAGE)
            yield b.set_column(
                i, b.schema.field(i), pa.FixedSizeListArray.from_arrays(pa.array(img.ravel()), img[0].size)
            )


class OptionBlindFingerprint(ToyDataset):
    @property
    def fingerprint(self):
        return "ab" * 32  # the same whatever the options


@pytest.fixture
def faulty_datasets(monkeypatch):
    mod = types.ModuleType("fmb_test_faulty_data")
    mod.centred = lambda **o: BatchCentred(**o)
    mod.blind = lambda **o: OptionBlindFingerprint(**o)
    monkeypatch.setitem(sys.modules, "fmb_test_faulty_data", mod)

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            for name in ("centred", "blind"):
                register(
                    DatasetSpec(
                        name=name,
                        description="x",
                        loader=f"fmb_test_faulty_data:{name}",
                        modalities=("image", "spectrum"),
                    )
                )

    with registered_plugin(Plugin(), "faulty-data"):
        yield


def test_rows_that_depend_on_batching_are_caught(faulty_datasets):
    check_dataset("centred", size=32, checks=["schema", "batches"])  # ids alone look fine
    with pytest.raises(
        AssertionError,
        match=r"\[dataset conformance: slicing\] dataset 'centred': rows read in "
        r"batches of 1 differ .*column 'image', row 0.*how it is batched",
    ):
        check_dataset("centred", size=32, checks=["slicing"])


def test_fingerprint_that_ignores_options_is_caught(faulty_datasets, toy):
    results = check_dataset("toy", size=24, seed=0, checks=["fingerprint_options"])
    assert results[0].status == "passed"
    with pytest.raises(
        AssertionError,
        match=r"fingerprint_options\] dataset 'blind': options seed=0 and seed=1 give "
        r"different data but the same fingerprint",
    ):
        check_dataset("blind", size=24, seed=0, checks=["fingerprint_options"])


def test_first_difference_finds_the_row():
    t = pa.table({"a": pa.array([1.0, 2.0, 3.0]), "s": ["x", "y", "z"]})
    assert first_difference(t, t) is None
    assert first_difference(t, t.set_column(0, "a", pa.array([1.0, 2.5, 3.0]))) == "column 'a', row 1"
    assert first_difference(t, t.set_column(1, "s", pa.array(["x", "y", "q"]))) == "column 's', row 2"
