"""The embed stage's accelerator path, on CPU: prepare in the loader, inference mode, bf16 autocast
(numbers close to fp32, their own cache entry, recorded), and the pinned-memory decision."""

import threading

import numpy as np
import pytest
import torch

from fmb.errors import UsageError
from fmb.models.base import Model, WeightsInfo
from fmb.plugins import registry
from fmb.protocol import accel
from fmb.protocol.embed import cache_key, cached_model, embed_dataset, request_identity
from fmb.protocol.prefetch import prefetch_batches
from fmb.protocol.run import RunConfig, load_model
from fmb.specs import ModelSpec
from fmb.testing.toy import ToyDataset

NPIX = 64


class TorchToy(Model):
    """A small torch network on the toy spectra: prepare (host) -> embed_prepared (forward)."""

    def __init__(self) -> None:
        spec = ModelSpec(
            name="torch-toy", description="test", loader="x:y", modalities=("spectrum",), outputs={"spectrum": 16}
        )
        super().__init__(spec, WeightsInfo("random", seed=0), {})
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(NPIX, 64), torch.nn.GELU(), torch.nn.Linear(64, 16)).eval()
        self.device = "cpu"
        self.seen: list[tuple[str, bool, bool]] = []  # (thread, inference mode, autocast) per forward pass
        self.prepared_in: list[str] = []

    def prepare(self, batch):
        self.prepared_in.append(threading.current_thread().name)
        return torch.from_numpy(np.nan_to_num(np.asarray(batch.column("flux").to_pylist(), np.float32)))

    def embed_prepared(self, x):
        self.seen.append(
            (threading.current_thread().name, torch.is_inference_mode_enabled(), torch.is_autocast_enabled("cpu"))
        )
        return {"spectrum": self.net(accel.to_device(x, self.device)).float().numpy()}

    def embed(self, batch):
        return self.embed_prepared(self.prepare(batch))


def direct(model: TorchToy, ds: ToyDataset) -> np.ndarray:
    """fp32 embeddings computed without FMB's embed stage (plain autograd-free forward passes)."""
    with torch.no_grad():
        return np.concatenate([model.net(model.prepare(b)).numpy() for b in ds.iter_batches(7)])


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_fp32_embed_stage_equals_direct_forward_and_runs_in_inference_mode(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("FMB_HOME", str(tmp_path))
    ds, model = ToyDataset(size=30, npix=NPIX), TorchToy()
    res = embed_dataset(model, ds, batch_size=7, workers=workers)
    prepared_in = list(model.prepared_in)
    assert np.array_equal(res.matrix("spectrum"), direct(model, ds))  # byte-identical, whatever the loader
    assert res.ident["precision"] == "fp32" and res.shards[0]["precision"] == "fp32"
    assert all(inf and not auto for _, inf, auto in model.seen) and len(model.seen) == 5
    main = threading.current_thread().name
    assert all(t == main for t, _, _ in model.seen)  # forward passes in the caller's thread
    assert all((t == main) == (workers == 0) for t in prepared_in) and len(prepared_in) == 5


def test_bf16_autocast_is_close_to_fp32_and_its_own_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("FMB_HOME", str(tmp_path))
    ds, model = ToyDataset(size=30, npix=NPIX), TorchToy()
    fp32 = embed_dataset(model, ds, batch_size=7)
    bf16 = embed_dataset(model, ds, batch_size=7, precision="bf16")
    assert all(auto for _, _, auto in model.seen[5:])
    assert bf16.key != fp32.key and bf16.built_shards == 1 and bf16.ident["precision"] == "bf16"
    a, b = fp32.matrix("spectrum"), bf16.matrix("spectrum")
    assert not np.array_equal(a, b)  # autocast did change the numbers
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert (1 - cos).max() < accel.BF16_COSINE_TOLERANCE
    assert embed_dataset(model, ds, batch_size=7, precision="bf16").reused  # and reused as such
    assert bf16.shards[0]["precision"] == "bf16"


def test_precision_is_checked_and_refused_for_models_without_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("FMB_HOME", str(tmp_path))
    ds = ToyDataset(size=20, npix=NPIX)
    with pytest.raises(UsageError, match="precision 'fp16'"):
        embed_dataset(TorchToy(), ds, precision="fp16")
    baseline = load_model(registry(), RunConfig(model="baseline", detector="knn"), "cpu")
    with pytest.raises(UsageError, match=r"no torch network.*bf16"):
        embed_dataset(baseline, ds, precision="bf16")
    k32, _ = cache_key(baseline, ds)
    assert cache_key(baseline, ds, "fp32")[0] == k32
    assert request_identity("m", {}, "random", 0, ds)["precision"] == "fp32"
    assert request_identity("m", {}, "random", 0, ds, "bf16") != request_identity("m", {}, "random", 0, ds)


def test_detect_finds_the_bf16_request_only_under_bf16(tmp_path, monkeypatch):
    """The request record (what `fmb detect` reads instead of building the model) is per precision."""
    monkeypatch.setenv("FMB_HOME", str(tmp_path))
    ds = ToyDataset(size=20, npix=NPIX)
    model = TorchToy()
    model.requested = {"options": {}, "weights": "random", "seed": 0}
    res = embed_dataset(model, ds, batch_size=8, precision="bf16")
    spec = model.spec
    assert cached_model(spec, {}, "random", 0, ds, "bf16").key == res.key
    with pytest.raises(UsageError, match=r"precision fp32.*fmb embed"):
        cached_model(spec, {}, "random", 0, ds)


def test_pin_memory_decision(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert accel.pin_memory_for("cuda") and accel.pin_memory_for("cuda:1")
    assert accel.pin_memory_for(torch.device("cuda", 0))
    assert not accel.pin_memory_for("cpu") and not accel.pin_memory_for("mps") and not accel.pin_memory_for(None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not accel.pin_memory_for("cuda")  # no driver: nothing to pin for
    x = torch.ones(3)
    assert accel.to_device(x, "cpu") is x  # no copy, no pinning on CPU
    same = accel.pin({"a": (x, np.ones(2))})  # without a CUDA driver nothing is pinned
    assert same["a"][0] is x and not x.is_pinned()


def test_loader_prepares_in_order_and_raises_a_failed_preparation(monkeypatch):
    from fmb.protocol import prefetch

    monkeypatch.setattr(prefetch, "BLOCK_ROWS", 12)  # several pool jobs of 2 batches
    ds = ToyDataset(size=40, npix=NPIX)
    for workers in (0, 1, 3):
        got = list(prefetch_batches(ds, 6, 3, 40, workers, prepare=lambda b: b.column("object_id")[0].as_py()))
        assert [p for _, p in got] == [b.column("object_id")[0].as_py() for b, _ in got] == list(range(3, 40, 6))
        assert sum(b.num_rows for b, _ in got) == 37

        def bad(b):
            raise ValueError("bad row")

        with pytest.raises(ValueError, match="bad row"):
            list(prefetch_batches(ds, 6, 0, 40, workers, prepare=bad))


def test_precision_in_the_configuration_and_the_run_label():
    from fmb.config import expand, resolve

    base = {"models": ["baseline"], "detectors": ["knn"]}
    (fp32,) = expand(resolve(None, base))
    (bf16,) = expand(resolve(None, {**base, "precision": "bf16"}))
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.label != fp32.label and bf16.label.endswith("bf16")  # default output folders differ
    assert bf16.to_dict()["precision"] == "bf16"
    with pytest.raises(UsageError, match="precision 'fp16'"):
        expand(resolve(None, {**base, "precision": "fp16"}))
