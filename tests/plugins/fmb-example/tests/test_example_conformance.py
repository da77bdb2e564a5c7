"""fmb-example passes FMB's conformance kit, registered only through its entry point."""

import numpy as np

from fmb.plugins import registry
from fmb.testing.conformance import parametrize


@parametrize("model", "example")
def test_model_conformance(fmb_check):
    fmb_check()


@parametrize("detector", "mahalanobis")
def test_detector_conformance(fmb_check):
    fmb_check()


def test_registered_through_the_entry_point():
    reg = registry()
    assert reg.model("example").source == "fmb-example (example)"
    assert reg.detector("mahalanobis").source == "fmb-example (example)"


def test_weights_kinds(fmb_toy_batch, tmp_path):
    spec = registry().model("example")
    load = spec.load()
    fixed, rand = load(spec), load(spec, weights="random", seed=3)
    assert fixed.weights.kind == "none" and rand.weights.kind == "random"
    path = fixed.save_weights(tmp_path / "proj")
    again = load(spec, weights=str(path))
    assert again.weights.kind == "path" and len(again.weights.sha256) == 64
    assert not np.allclose(fixed.embed(fmb_toy_batch)["image"], rand.embed(fmb_toy_batch)["image"])
