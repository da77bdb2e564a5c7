"""The conformance kit: built-ins pass it, and each check catches the fault it is for."""

import sys
import types

import numpy as np
import pytest

from fmb import hookimpl
from fmb.detectors.base import Detector
from fmb.models.baseline import BaselineModel
from fmb.models.baseline import load_model as load_baseline
from fmb.specs import DetectorSpec, ModelSpec
from fmb.testing import registered_plugin
from fmb.testing.conformance import (
    CHECKS,
    MODEL_EMBEDDING_CHECKS,
    check_dataset,
    check_detector,
    check_light_registration,
    check_model,
    parametrize,
)
from fmb.testing.toy import ToyDataset


@parametrize("model", "baseline")
def test_baseline_model(fmb_check):
    fmb_check()


@pytest.mark.parametrize(("name", "params"), [("iforest", {"n_estimators": 100}), ("knn", {}), ("ecod", {})])
def test_builtin_detectors(name, params):
    results = check_detector(name, **params)
    assert [r.check for r in results if r.status == "passed"] == list(CHECKS["detector"])


@parametrize("dataset", "toy")
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
    "noisy": lambda out, batch: {k: v + np.random.default_rng().normal(size=v.shape).astype(v.dtype)
                                 for k, v in out.items()},
    "float64": lambda out, batch: {k: v.astype(np.float64) for k, v in out.items()},
    "joint-without-spectrum": lambda out, batch: {**out, "joint": np.zeros((batch.num_rows, 1152), np.float32),
                                                  "spectrum": np.zeros((batch.num_rows, 128), np.float32)},
}
CAUGHT_BY = {"zeros-when-masked": "masked_spectrum", "batch-dependent": "batch_independent",
             "noisy": "deterministic", "float64": "outputs", "joint-without-spectrum": "missing_modality"}


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
                register(ModelSpec(name=fault, description="faulty", loader=f"fmb_test_faulty:load_{i}",
                                   modalities=("image", "spectrum"),
                                   outputs={"image": 1024, "spectrum": 128, "joint": 1152}))

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


def test_heavy_registration_is_caught(tmp_path, monkeypatch):
    (tmp_path / "fmb_fake_heavy.py").write_text("LOADED = True\n")
    (tmp_path / "fmb_heavy_plugin.py").write_text(
        "import fmb_fake_heavy\nfrom fmb import hookimpl\nfrom fmb.specs import ModelSpec\n\n"
        "@hookimpl\ndef register_models(register):\n"
        "    register(ModelSpec(name='heavy', description='x', loader='fmb_heavy_plugin:x',\n"
        "                       modalities=('image',), outputs={'image': 2}))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fmb_heavy_plugin

    with registered_plugin(fmb_heavy_plugin, "heavy-plugin"):
        check_light_registration("model", "heavy", heavy=("torch",))
        with pytest.raises(AssertionError, match="imports fmb_fake_heavy"):
            check_light_registration("model", "heavy", heavy=("torch", "fmb_fake_heavy"))
    monkeypatch.delitem(sys.modules, "fmb_heavy_plugin")


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

            register(DatasetSpec(name="noslice", description="x", loader="fmb_test_faulty_ds:open_dataset",
                                 modalities=("image", "spectrum")))

    with registered_plugin(Plugin(), "noslice"):
        check_dataset("noslice", checks=["schema", "batches"])
        with pytest.raises(AssertionError, match=r"start=8, stop=24"):
            check_dataset("noslice", checks=["slicing"])
