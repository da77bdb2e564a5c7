"""FMB's AION preprocessing against the upstream codec (fixture made by external/golden/make_aion_golden.py),
native survey bands, pixel-scale resampling and orientation."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from fmb.data import canonical as C
from fmb.errors import DataError, UsageError
from fmb.models.base import WeightsInfo
from fmb.plugins import registry
from fmb_aion.bands import NMGY_TO_HSC, PIXEL_SCALE, auto_mapping, get_mapping
from fmb_aion.model import AionModel
from fmb_aion.preprocess import crop_or_pad, images_from_batch, resample, spectra_from_batch
from fmb_aion.weights import Components

GOLDEN = np.load(Path(__file__).parent / "data" / "aion_golden.npz")


def image_batch(flux: np.ndarray, bands: list[str], pixel_scale: float, spectra: dict | None = None) -> pa.RecordBatch:
    n, b, h, w = flux.shape
    fields = [pa.field(C.OBJECT_ID, pa.int64()), C.image_field(bands, h, w, pixel_scale)]
    cols = [
        pa.array(np.arange(n)),
        pa.FixedSizeListArray.from_arrays(pa.array(flux.astype(np.float32).ravel()), b * h * w),
    ]
    if spectra:
        npix = spectra["flux"].shape[1]
        fields += C.spectrum_fields(npix)
        for name, dtype in ((C.FLUX, np.float32), (C.IVAR, np.float32), (C.MASK, bool)):
            cols.append(pa.FixedSizeListArray.from_arrays(pa.array(spectra[name].astype(dtype).ravel()), npix))
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields))


@pytest.fixture(scope="module")
def model(tiny_parts):
    comps = Components(*tiny_parts, WeightsInfo(kind="random", seed=0), "tiny")
    return AionModel(registry().model("aion"), comps, {"size": "tiny"}, get_mapping("auto"))


def codec_view(codec, flux: torch.Tensor, bands: list[str]) -> np.ndarray:
    """The codec's own steps before its first learned layer (what production's ``codec.encode`` runs)."""
    f = codec.center_crop(flux.clone())
    f = codec.clamp(f, bands)
    f = codec.rescaler.forward(f, codec._get_survey(bands))
    f, _ = codec.image_padder.forward(codec._range_compress(f), bands)
    return f.numpy()


@pytest.mark.parametrize("bands", [["g", "r", "i", "z"], ["DES-G", "DES-R", "DES-I", "des-z"]])
def test_legacy_survey_stamps_match_upstream(model, bands):
    batch = image_batch(GOLDEN["ls_flux"], bands, float(GOLDEN["ls_pixel_scale"]))
    flux, codec_bands, mapping, valid = model.codec_inputs(batch)
    assert mapping.name == "legacy" and codec_bands == ["DES-G", "DES-R", "DES-I", "DES-Z"] and valid.all()
    np.testing.assert_allclose(
        codec_view(model.image_codec, flux, codec_bands), GOLDEN["ls_expected"], rtol=0, atol=1e-5
    )


def test_hsc_stamps_match_upstream(model):
    nmgy = GOLDEN["hsc_flux_hsc_units"] / NMGY_TO_HSC  # canonical images are nanomaggies
    batch = image_batch(nmgy, ["g", "r", "i", "z", "y"], float(GOLDEN["hsc_pixel_scale"]))
    flux, codec_bands, mapping, _ = model.codec_inputs(batch)
    assert mapping.name == "hsc" and codec_bands == ["HSC-G", "HSC-R", "HSC-I", "HSC-Z", "HSC-Y"]
    np.testing.assert_allclose(
        codec_view(model.image_codec, flux, codec_bands), GOLDEN["hsc_expected"], rtol=0, atol=1e-5
    )


def test_spectra_match_upstream():
    sp = {C.FLUX: GOLDEN["spec_flux"], C.IVAR: GOLDEN["spec_ivar"], C.MASK: GOLDEN["spec_mask"]}
    batch = image_batch(GOLDEN["ls_flux"], ["g", "r", "i", "z"], 0.262, sp)
    out = spectra_from_batch(batch)
    np.testing.assert_allclose(out.flux, GOLDEN["spec_flux"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.ivar, GOLDEN["spec_ivar"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out.mask, GOLDEN["spec_mask"])
    np.testing.assert_allclose(out.wavelength[1], GOLDEN["spec_wavelength"], rtol=0, atol=1e-3)


def _quadrant(img: np.ndarray) -> tuple[int, int]:
    r, c = np.unravel_index(np.argmax(img), img.shape)
    return int(r >= img.shape[0] / 2), int(c >= img.shape[1] / 2)


@pytest.mark.parametrize("pixel_scale", [0.262, 0.1])
def test_a_corner_feature_stays_in_its_corner(model, pixel_scale):
    x = np.zeros((1, 4, 100, 100), np.float32)
    x[0, :, 8:13, 6:11] = 5.0  # top-left, as in the golden fixture's first stamp
    flux, *_ = model.codec_inputs(image_batch(x, ["g", "r", "i", "z"], pixel_scale))
    upstream = GOLDEN["ls_expected"][0, 5]  # DES-G plane of the upstream codec input (feature top-left)
    assert _quadrant(flux[0, 0].numpy()) == _quadrant(upstream) == (0, 0)


def test_a_01_arcsec_stamp_is_resampled_to_the_survey_scale():
    # a Gaussian of sigma 6 px at 0.1"/px is sigma 0.6"; on the HSC grid (0.168"/px) sigma 3.571 px
    yy, xx = np.mgrid[:120, :120] - 59.5
    g = np.exp(-(xx**2 + yy**2) / (2 * 6.0**2)).astype(np.float32)
    x = np.broadcast_to(g, (1, 4, 120, 120)).copy()
    img = images_from_batch(image_batch(x, ["VIS", "Y", "J", "H"], 0.1), PIXEL_SCALE["hsc"])
    assert img.flux.shape == (1, 4, 96, 96) and img.zoom == pytest.approx(0.1 / 0.168)
    out = img.flux[0, 0].astype(np.float64)
    np.testing.assert_allclose(out.sum(), g.sum(), rtol=2e-3)  # total flux (nanomaggies) conserved
    yy, xx = np.mgrid[:96, :96] - 47.5
    sigma = np.sqrt((out * (xx**2 + yy**2)).sum() / out.sum() / 2)
    assert sigma == pytest.approx(6.0 * 0.1 / 0.168, rel=0.03)
    # the centre stays the centre
    assert abs((out * xx).sum() / out.sum()) < 1e-3 and abs((out * yy).sum() / out.sum()) < 1e-3


def test_resample_identity_and_crop_pad():
    x = np.arange(2 * 3 * 10 * 10, dtype=np.float32).reshape(2, 3, 10, 10)
    np.testing.assert_array_equal(resample(x, 1.0 + 1e-5, 10), x)
    padded = crop_or_pad(x, 14)
    assert padded.shape == (2, 3, 14, 14) and np.array_equal(padded[..., 2:12, 2:12], x)
    np.testing.assert_array_equal(crop_or_pad(padded, 10), x)


def test_auto_mapping_and_refusals():
    assert auto_mapping(["g", "r", "i", "z"], 0.262).name == "legacy"
    assert auto_mapping(["g", "r", "i", "z"], 0.17).name == "hsc"
    assert auto_mapping(["VIS", "Y", "J", "H"], 0.1).name == "hsc"
    assert auto_mapping(["HSC-G", "HSC-R"], 0.262).name == "hsc"
    hsc = get_mapping("hsc")
    with pytest.raises(UsageError, match="no slot for band"):
        hsc.codec_bands(["DES-G"])
    with pytest.raises(UsageError, match="mix Euclid"):
        hsc.codec_bands(["VIS", "g"])
    with pytest.raises(UsageError, match="twice"):
        hsc.codec_bands(["r", "HSC-R"])


def test_an_image_without_pixel_scale_is_refused(model):
    batch = image_batch(np.ones((1, 4, 96, 96), np.float32), ["g", "r", "i", "z"], float("nan"))
    with pytest.raises(DataError, match="pixel_scale"):
        model.codec_inputs(batch)
