"""Shapes, dtypes, determinism, batch invariance and missing modalities (small size)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from fmb.data import canonical as C
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb_astroclip.preprocess import spectrum_inputs, to_rgb
from fmb_astroclip.specformer import spectrum_tokens


@pytest.fixture(scope="module")
def small():
    spec = registry().model("astroclip")
    return registry().load_model(spec.name, weights="random", options={"size": "small"}, seed=0)


@pytest.fixture(scope="module")
def batch():
    return next(ToyDataset(size=12, seed=1).iter_batches(12))


def test_registered_through_entry_point():
    spec = registry().model("astroclip")
    assert spec.source.startswith("fmb-astroclip")
    assert spec.license == "MIT"
    assert spec.outputs == {"image": 1024, "spectrum": 1024, "joint": 1024}


def test_shapes_dtypes_and_settings(small, batch):
    out = small.embed(batch)
    assert set(out) == {"image", "spectrum", "joint"}
    for v in out.values():
        assert v.shape == (12, 128) and v.dtype == np.float32 and np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(out["joint"], axis=1), 1, atol=1e-5)
    assert small.settings()["size"] == "small" and small.outputs == {"image": 128, "spectrum": 128, "joint": 128}
    assert small.weights.kind == "random" and small.weights.seed == 0


def test_deterministic_and_seeded(small, batch):
    spec = registry().model("astroclip")
    again = registry().load_model(spec.name, weights="random", options={"size": "small"}, seed=0)
    other = registry().load_model(spec.name, weights="random", options={"size": "small"}, seed=1)
    a, b, c = small.embed(batch), again.embed(batch), other.embed(batch)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["spectrum"], b["spectrum"])
    assert not np.allclose(a["image"], c["image"])


def test_batch_invariance(small, batch):
    full = small.embed(batch)
    for lo, n in ((0, 1), (5, 3), (11, 1)):
        part = small.embed(batch.slice(lo, n))
        for k in full:
            np.testing.assert_allclose(part[k], full[k][lo : lo + n], rtol=1e-4, atol=1e-5)


def _with_mask(batch: pa.RecordBatch, rows: list[int]) -> pa.RecordBatch:
    mask = C.column_array(batch, C.MASK, bool).copy()
    mask[rows] = True
    i = batch.schema.get_field_index(C.MASK)
    arr = pa.FixedSizeListArray.from_arrays(pa.array(mask.ravel()), mask.shape[1])
    return batch.set_column(i, batch.schema.field(i), arr)


def test_missing_spectrum_gives_nan_rows_not_zeros(small, batch):
    out = small.embed(_with_mask(batch, [2, 7]))
    assert np.isnan(out["spectrum"][[2, 7]]).all() and np.isnan(out["joint"][[2, 7]]).all()
    assert np.isfinite(out["image"]).all()
    assert np.isfinite(np.delete(out["spectrum"], [2, 7], axis=0)).all()
    no_spec = batch.drop_columns([C.FLUX, C.IVAR, C.MASK])
    assert set(small.embed(no_spec)) == {"image"}


def test_spectrum_tokens_match_upstream_layout():
    x = torch.randn(2, 7781) * 3 + 5
    t = spectrum_tokens(x)
    assert t.shape == (2, 778, 22)
    std, mean = x.std(1).clamp(min=0.2), x.mean(1)
    torch.testing.assert_close(t[:, 0, 0], (mean - 2) / 2)
    torch.testing.assert_close(t[:, 0, 1], (std - 2) / 8)
    assert (t[:, 0, 2:] == 0).all() and (t[:, 1:, :2] == 0).all()
    z = (x - mean[:, None]) / std[:, None]
    torch.testing.assert_close(t[:, 1, 2:], z[:, :20])
    torch.testing.assert_close(t[:, -1, 2:], z[:, 7760:7780])


def test_off_grid_spectrum_is_interpolated_and_padded_with_its_mean(batch):
    flux, ok = spectrum_inputs(batch)  # toy: 256 pixels from 3600 A at 0.8 A
    assert ok.all() and flux.shape == (12, 7781)
    raw = C.column_array(batch, C.FLUX)
    np.testing.assert_allclose(flux[:, :256].numpy(), raw, rtol=1e-5)
    np.testing.assert_allclose(flux[:, 300].numpy(), raw.mean(axis=1), rtol=1e-5)


def test_rgb_follows_the_legacy_stretch():
    img = np.zeros((1, 3, 2, 2), np.float32)
    img[0, :, 0, 0] = 1.0
    rgb = to_rgb(img)
    assert rgb.shape == (1, 3, 2, 2) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[0, 0, 0, 0] < rgb[0, 2, 0, 0]  # red (z, scale 2.2) below blue (g, scale 6.0)
