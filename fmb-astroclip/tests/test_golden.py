"""fmb-astroclip's preprocessing held against upstream AstroCLIP's (golden tensors from running upstream's
``AstroClipCollator`` + ``ToRGB`` at commit 9d85069: external/golden/make_astroclip_golden.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fmb.data import canonical as C
from fmb_astroclip.model import PREPROCESS_VERSION
from fmb_astroclip.preprocess import image_inputs, image_plan, spectrum_inputs

GOLDEN = Path(__file__).parent / "data" / "astroclip_golden.npz"


def _batch(images: np.ndarray, bands: list[str], pixel_scale: float, spectra: np.ndarray | None = None):
    h, w = images.shape[-2:]
    fields = [C.image_field(bands, h, w, pixel_scale)]
    arrays = [pa.FixedSizeListArray.from_arrays(pa.array(images.astype(np.float32).ravel()), images[0].size)]
    if spectra is not None:
        fields += C.spectrum_fields()
        arrays += [
            pa.FixedSizeListArray.from_arrays(pa.array(spectra.astype(np.float32).ravel()), C.DESI_NPIX),
            pa.FixedSizeListArray.from_arrays(pa.array(np.ones(spectra.size, np.float32)), C.DESI_NPIX),
            pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(spectra.size, bool)), C.DESI_NPIX),
        ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def test_golden_fixture_is_from_the_pinned_commit(golden):
    assert str(golden["commit"]) == "9d8506970773fbbf4f0d445d2b52def77bd60f56"
    assert golden["image_out"].shape == (2, 3, 144, 144) and golden["cutouts"].shape == (2, 3, 152, 152)


def test_image_inputs_equal_upstream(golden):
    batch = _batch(golden["cutouts"].astype(np.float32), ["g", "r", "z"], 0.262)
    x, ok = image_inputs(batch)
    assert ok.all() and tuple(x.shape) == (2, 3, 144, 144)
    assert np.abs(x.numpy() - golden["image_out"]).max() <= 1e-5


def test_band_order_in_the_data_does_not_matter(golden):
    cut = golden["cutouts"].astype(np.float32)[:, ::-1]  # z, r, g: mapped back by name
    x, _ = image_inputs(_batch(np.ascontiguousarray(cut), ["z", "r", "g"], 0.262))
    assert np.abs(x.numpy() - golden["image_out"]).max() <= 1e-5


def test_spectrum_inputs_equal_upstream(golden):
    batch = _batch(golden["cutouts"].astype(np.float32), ["g", "r", "z"], 0.262, golden["spectra"].astype(np.float32))
    s, ok = spectrum_inputs(batch)
    assert ok.all()
    assert np.abs(s.numpy() - golden["spectrum_out"].astype(np.float32)).max() <= 1e-5


def test_corner_feature_stays_in_its_corner():
    """A block at rows 10-19, cols 100-139 of a native 152-px stamp lands at rows 6-15, cols 96-135 of the
    network input (CenterCrop(144) removes 4 px a side), not at the transposed rows 96-135, cols 6-15."""
    img = np.zeros((1, 3, 152, 152), np.float32)
    img[0, :, 10:20, 100:140] = 1.0
    x, _ = image_inputs(_batch(img, ["g", "r", "z"], 0.262))
    lit = (x[0].numpy() != x[0, :, 0, 0].numpy()[:, None, None]).any(axis=0)
    expected = np.zeros((144, 144), bool)
    expected[6:16, 96:136] = True
    np.testing.assert_array_equal(lit, expected)


def test_euclid_stamp_is_resampled_to_the_native_scale():
    """A 64-px 0.1"/px stamp keeps its angular size: it spans 64 x 0.1 / 0.262 = 24.4 network pixels
    (not 144), and a blob 20.5 px right of centre lands 20.5 x 0.1 / 0.262 = 7.82 px right of centre."""
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 31.5) ** 2 + (xx - 52.0) ** 2) / (2 * 3.0**2)).astype(np.float32)
    img = np.repeat(blob[None, None], 4, axis=1)
    batch = _batch(img, ["VIS", "Y", "J", "H"], 0.1)
    plan = image_plan(batch.schema)
    assert [(m["band"], m["from"], m["match"]) for m in plan["band_map"]] == [
        ("g", "VIS", "wavelength"),
        ("r", "VIS", "wavelength"),
        ("z", "Y", "wavelength"),
    ]
    assert plan["resample"]["zoom"] == pytest.approx(0.1 / 0.262, rel=1e-5)
    assert plan["resample"]["rows"]["content"] == pytest.approx(64 * 0.1 / 0.262, abs=1e-3)
    flat, _ = image_inputs(_batch(np.ones_like(img), ["VIS", "Y", "J", "H"], 0.1))
    diff = np.abs(flat[0].numpy() - flat[0, :, 0, 0].numpy()[:, None, None])
    lit = (diff > 0.5 * diff.max()).any(axis=0)  # the stamp's extent at half its plateau (blur tails are fainter)
    rows = np.flatnonzero(lit.any(axis=1))
    assert 23 <= rows.max() - rows.min() + 1 <= 26  # 24.4 px of content
    x, _ = image_inputs(batch)
    z = x[0, 0].numpy() - x[0, 0, 0, 0].item()
    col = (z.sum(axis=0) * np.arange(144)).sum() / z.sum()
    assert col == pytest.approx(71.5 + 20.5 * 0.1 / 0.262, abs=0.35)


def test_preprocessing_version_bumped():
    assert PREPROCESS_VERSION >= 2  # cached embeddings from the transposed, resized inputs are not reused
