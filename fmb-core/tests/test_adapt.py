"""fmb.contracts and fmb.adapt: contract validation, resampling by pixel scale, band mapping, domain warnings."""

from __future__ import annotations

import numpy as np
import pytest

from fmb.adapt import domain_warnings, map_bands, resample_to_scale
from fmb.contracts import Band, ImageContract, InputContract, SpectrumContract
from fmb.data import canonical as C
from fmb.errors import DataError
from fmb.specs import ModelSpec, SpecError

IMG = ImageContract(
    bands=(Band("g", 482.7), Band("r", 643.2), Band("z", 917.9)),
    pixel_scale_arcsec=0.262,
    stamp_size=144,
    flux_unit="nanomaggies",
    zero_point=22.5,
    orientation="natural",
    stretch="none",
    source="test",
)
SPEC = SpectrumContract(
    wavelength_min_aa=3600.0,
    wavelength_max_aa=9824.0,
    pixel_aa=0.8,
    resolution="R~3000",
    flux_unit="1e-17 erg/s/cm2/A",
    normalisation="none",
    source="test",
)


def _schema(bands, h, scale, start=C.DESI_WAVE_START, npix=C.DESI_NPIX):
    import pyarrow as pa

    return pa.schema([C.image_field(bands, h, h, scale), *C.spectrum_fields(npix, start)])


def test_same_scale_is_an_exact_centre_crop_or_pad():
    x = np.random.default_rng(0).random((2, 3, 152, 152)).astype(np.float32)
    out, rec = resample_to_scale(x, 0.262, 0.262, 144)
    np.testing.assert_array_equal(out, x[:, :, 4:148, 4:148])
    assert rec["flux_factor"] == 1.0 and rec["rows"]["crop"] == 8
    odd, _ = resample_to_scale(x[:, :, :151, :151], 0.262, 0.262, 144)  # torchvision: round(3.5) = 4
    np.testing.assert_array_equal(odd, x[:, :, 4:148, 4:148])
    small, rec = resample_to_scale(x[:, :, :140, :140], 0.262, 0.262, 144)
    np.testing.assert_array_equal(small[:, :, 2:142, 2:142], x[:, :, :140, :140])
    assert small[:, :, :2].sum() == 0 and rec["rows"]["pad"] == 4


def test_downsampling_conserves_flux_and_position():
    yy, xx = np.mgrid[:128, :128]
    g = np.exp(-((yy - 63.5) ** 2 + (xx - 83.5) ** 2) / (2 * 8.0**2))
    out, rec = resample_to_scale(g[None, None], 0.1, 0.262, 64)
    assert out.sum() == pytest.approx(g.sum(), rel=1e-3)  # flux-conserving
    assert rec["flux_factor"] == pytest.approx((0.262 / 0.1) ** 2, rel=1e-5)
    col = (out[0, 0].sum(axis=0) * np.arange(64)).sum() / out.sum()
    assert col == pytest.approx(31.5 + 20 * 0.1 / 0.262, abs=0.02)
    sb, rec = resample_to_scale(g[None, None], 0.1, 0.262, 64, flux_conserving=False)
    assert sb.max() == pytest.approx(g.max(), rel=0.1) and rec["conserves"] == "surface brightness"


def test_upsampling_keeps_the_centre():
    x = np.zeros((1, 1, 9, 9), np.float32)
    x[0, 0, 4, 4] = 1.0
    out, _ = resample_to_scale(x, 0.2, 0.1, 32)
    r, c = np.unravel_index(out[0, 0].argmax(), (32, 32))
    assert out[0, 0, 15:17, 15:17].sum() == pytest.approx(out.max() * 4, rel=1e-6) and (r, c) in {(15, 15)}


def test_map_bands_by_name_then_wavelength():
    m = map_bands(["z", "g", "r"], [917.9, 482.7, 643.2], IMG)
    assert [(d["band"], d["index"], d["match"]) for d in m] == [("g", 1, "name"), ("r", 2, "name"), ("z", 0, "name")]
    m = map_bands(["VIS", "Y", "J", "H"], [718.0, 1081.0, 1367.0, 1771.0], IMG)
    assert [d["from"] for d in m] == ["VIS", "VIS", "Y"]
    with pytest.raises(DataError, match="no band 'g'"):
        map_bands(["a", "b"], [None, None], IMG)


def test_domain_warnings_on_the_synthetic_survey_and_none_at_home():
    c = InputContract(image=IMG, spectrum=SPEC)
    w = domain_warnings(_schema(["VIS", "Y", "J", "H"], 64, 0.1), c)
    assert any('pixel scale 0.1"/px' in s and "ratio 0.382" in s for s in w)
    assert any("they cover 17%" in s for s in w)  # 6.4" of 37.7"
    assert any("band g (483 nm) fed from VIS (718 nm)" in s for s in w)
    assert not any(s.startswith("spectrum") for s in w)
    assert domain_warnings(_schema(["g", "r", "z"], 152, 0.262), c) == []
    short = domain_warnings(_schema(["g", "r", "z"], 152, 0.262, start=6000.0, npix=2000), c)
    assert short == ["spectrum: 6000-7599 A covers 26% of the model's 3600-9824 A"]
    assert domain_warnings(_schema(["g", "r", "z"], 152, 0.262), None) == []


def test_contract_is_validated_in_the_model_spec():
    base = dict(name="m", description="d", loader="a:b", outputs={"image": 4})
    ModelSpec(modalities=("image",), input_contract=InputContract(image=IMG), **base).validate()
    with pytest.raises(SpecError, match="declares 'spectrum' but the model does not read"):
        ModelSpec(modalities=("image",), input_contract=InputContract(image=IMG, spectrum=SPEC), **base).validate()
    bad = ImageContract(**{**IMG.__dict__, "pixel_scale_arcsec": 0.0})
    with pytest.raises(SpecError, match="pixel_scale_arcsec must be > 0"):
        ModelSpec(modalities=("image",), input_contract=InputContract(image=bad), **base).validate()
    d = ModelSpec(modalities=("image",), input_contract=InputContract(image=IMG), **base).to_dict()
    assert d["input_contract"]["image"]["bands"][0] == {"name": "g", "wavelength_nm": 482.7}
