"""The example third-party plugin runs end to end through the ``fmb`` command, found by its entry point."""

import json
import os
import subprocess
from importlib.metadata import distribution

import pytest


def test_example_declares_only_its_entry_point():
    eps = [ep for ep in distribution("fmb-example").entry_points if ep.group == "fmb"]
    assert [(ep.name, ep.value) for ep in eps] == [("example", "fmb_example.plugin")]


@pytest.mark.slow
def test_fmb_run_with_the_example_plugin(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            "fmb",
            "run",
            "--model",
            "example",
            "--detector",
            "mahalanobis",
            "--dataset",
            "synthetic:size=64",
            "--output",
            str(out),
            "-q",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, FMB_LOAD_PLUGINS="example"),
    )  # this entry point only
    assert proc.returncode == 0, proc.stderr
    results = list(out.rglob("results.json"))
    assert len(results) == 1 and (results[0].parent / "scores.parquet").exists()
    res = json.loads(results[0].read_text())
    text = json.dumps(res)
    assert '"example"' in text and '"mahalanobis"' in text


def test_example_weights_load_strictly(tmp_path):
    import numpy as np

    from fmb.errors import ModelError
    from fmb.plugins import registry
    from fmb.testing.toy import ToyDataset

    spec = registry().model("example")
    load = spec.load()
    m = load(spec, weights="random", seed=4)
    f = m.save_weights(tmp_path / "w.npz")
    again = load(spec, weights=str(f))
    batch = next(ToyDataset(size=3).iter_batches(3))
    for k, v in m.embed(batch).items():
        np.testing.assert_array_equal(again.embed(batch)[k], v)
    good = dict(m.matrices)
    faults = {
        "renamed": ({"img": good["image"], "spectrum": good["spectrum"]}, "image"),
        "dropped": ({"spectrum": good["spectrum"]}, "image"),
        "extra": ({**good, "bias": np.zeros(3)}, "bias"),
        "wrong_shape": ({**good, "spectrum": good["spectrum"][:-1]}, "spectrum"),
    }
    for fault, (arrays, key) in faults.items():
        bad = tmp_path / f"{fault}.npz"
        np.savez(bad, **arrays)
        with pytest.raises(ModelError) as exc:
            load(spec, weights=str(bad))
        assert "\n" not in str(exc.value) and key in str(exc.value) and str(bad) in str(exc.value), fault
