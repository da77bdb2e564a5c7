"""The aion model on canonical batches: shapes, batch invariance, missing modalities, options."""

import numpy as np
import pyarrow as pa
import pytest

from fmb.data import canonical as C
from fmb.errors import UsageError
from fmb.models.base import WeightsInfo
from fmb.plugins import registry
from fmb.testing.toy import ToyDataset
from fmb_aion.bands import MAPPINGS, NMGY_TO_HSC, get_mapping
from fmb_aion.model import AionModel, parse_options
from fmb_aion.preprocess import crop_or_pad, images_from_batch, resample, spectra_from_batch
from fmb_aion.weights import Components


@pytest.fixture(scope="module")
def model(tiny_parts):
    comps = Components(*tiny_parts, WeightsInfo(kind="random", seed=0), "tiny")
    return AionModel(registry().model("aion"), comps, {"size": "tiny"}, get_mapping("hsc"))


@pytest.fixture(scope="module")
def batch():
    return next(ToyDataset(size=6, seed=1).iter_batches(6))


def _mask_all(batch: pa.RecordBatch, rows: list[int]) -> pa.RecordBatch:
    mask = C.column_array(batch, C.MASK, bool).copy()
    mask[rows] = True
    i = batch.schema.get_field_index(C.MASK)
    col = pa.FixedSizeListArray.from_arrays(pa.array(mask.ravel()), mask.shape[1])
    return batch.set_column(i, batch.schema.field(i), col)


def test_outputs_and_settings(model, batch):
    out = model.embed(batch)
    assert set(out) == {"image", "spectrum", "joint"}
    for v in out.values():
        assert v.shape == (6, 64) and v.dtype == np.float32 and np.isfinite(v).all()
    assert not np.allclose(out["image"], out["joint"])
    assert model.outputs == {"image": 64, "spectrum": 64, "joint": 64}
    s = model.settings()
    assert s["size"] == "tiny" and s["dim"] == 64 and s["bands"]["name"] == "hsc" and s["preprocess"] == 2
    assert s["bands"]["slots"]["VIS"] == "HSC-R" and s["bands"]["pixel_scale"] == 0.168


def test_batch_invariance(model, batch):
    whole = model.embed(batch)
    parts = [model.embed(batch.slice(0, 2)), model.embed(batch.slice(2, 4))]
    for k, v in whole.items():
        np.testing.assert_allclose(np.vstack([p[k] for p in parts]), v, rtol=1e-4, atol=1e-5)


def test_missing_spectrum_gives_nan_rows(model, batch):
    out = model.embed(_mask_all(batch, [1, 4]))
    for k in ("spectrum", "joint"):
        assert np.isnan(out[k][[1, 4]]).all(), k
        assert np.isfinite(out[k][[0, 2, 3, 5]]).all(), k
    assert np.isfinite(out["image"]).all()
    ref = model.embed(batch)
    np.testing.assert_allclose(out["spectrum"][[0, 2, 3, 5]], ref["spectrum"][[0, 2, 3, 5]], rtol=1e-4, atol=1e-5)


def test_image_preprocessing_sizes():
    x = np.ones((1, 4, 16, 16), np.float32)
    y = resample(x, 0.1 / 0.168)  # a 16 px stamp at 0.1"/px covers 9.5 px at 0.168"/px, zero padding around
    assert y.shape == (1, 4, 96, 96)
    np.testing.assert_allclose(y.sum(), x.sum(), rtol=0.1)  # flux roughly conserved (edges are linear)
    assert y[0, 0, 0, 0] == 0 and y[0, 0, 47, 47] > 0
    big = np.arange(128 * 128, dtype=np.float32).reshape(1, 1, 128, 128)
    np.testing.assert_array_equal(crop_or_pad(big), big[..., 16:112, 16:112])  # crop keeps pixels


def test_preprocessing_from_batch(batch):
    img = images_from_batch(batch, 0.168)
    assert img.flux.shape == (6, 4, 96, 96) and img.bands == ["VIS", "Y", "J", "H"] and img.valid.all()
    sp = spectra_from_batch(_mask_all(batch, [0]))
    assert sp.flux.shape == (6, 256) and sp.wavelength[0, 0] == 3600.0
    assert not sp.valid[0] and sp.valid[1:].all() and (sp.ivar[0] == 0).all()


def test_band_mappings():
    assert get_mapping("hsc").codec_bands(["VIS", "Y", "J", "H"]) == ["HSC-R", "HSC-I", "HSC-Z", "HSC-Y"]
    assert get_mapping("legacy").codec_bands(["H", "VIS"]) == ["DES-Z", "DES-G"]
    assert MAPPINGS["hsc"].flux_scale == pytest.approx(NMGY_TO_HSC) == pytest.approx(63.0957, rel=1e-5)
    assert get_mapping("hsc").codec_bands(["g", "y"]) == ["HSC-G", "HSC-Y"]
    assert get_mapping("legacy").codec_bands(["g", "r", "i", "z"]) == ["DES-G", "DES-R", "DES-I", "DES-Z"]
    with pytest.raises(UsageError, match="no slot"):
        get_mapping("hsc").codec_bands(["u"])
    with pytest.raises(UsageError, match="no slot"):
        get_mapping("legacy").codec_bands(["y"])


def test_legacy_mapping_changes_embeddings(tiny_parts, batch, model):
    comps = Components(*tiny_parts, WeightsInfo(kind="random", seed=0), "tiny")
    legacy = AionModel(registry().model("aion"), comps, {"bands": "legacy"}, get_mapping("legacy"))
    assert legacy.settings()["image_tokens"] == "tok_image"
    assert not np.allclose(legacy.embed(batch)["image"], model.embed(batch)["image"])


def test_option_errors():
    assert parse_options({"size": "tiny"})[:2] == ("tiny", True)
    assert parse_options(None)[2] is None  # bands=auto: chosen per image
    assert parse_options({"adapter": "x.pt"})[2].name == "adapter"
    for bad, msg in [
        ({"colour": 1}, "unknown option"),
        ({"size": "huge"}, "unknown size"),
        ({"bands": "adapter"}, "needs adapter"),
        ({"bands": "sdss"}, "unknown band mapping"),
        ({"bands": "hsc", "adapter": "x.pt"}, "drop bands"),
    ]:
        with pytest.raises(UsageError, match=msg):
            parse_options(bad)
