"""Codecs: round trips, and the polymathic-aion 0.0.2 faults FMB guards against."""

import numpy as np
import pytest
import torch

from fmb_aion.bands import HSC_BANDS, NMGY_TO_HSC
from fmb_aion.sizes import spectrum_codec_config
from fmb_aion.tokens import fix_hsc_decode, image_tokens, spectrum_tokens


def _spectra(n=3, npix=400, seed=0):
    rng = np.random.default_rng(seed)
    wave = np.broadcast_to(3600 + 0.8 * np.arange(npix, dtype=np.float32), (n, npix)).copy()
    flux = (1 + rng.normal(0, 0.1, (n, npix))).astype(np.float32)
    return flux, np.full((n, npix), 50.0, np.float32), np.zeros((n, npix), bool), wave


def test_image_codec_round_trip(tiny_parts):
    codec = fix_hsc_decode(tiny_parts[1])
    x = torch.rand(2, 5, 96, 96) * NMGY_TO_HSC
    with torch.inference_mode():
        tok = image_tokens(codec, x, list(HSC_BANDS))
        assert tok.shape == (2, 576) and tok.min() >= 0 and tok.max() < 4375
        back = codec.decode(tok, bands=list(HSC_BANDS))  # HSC decode works once fixed
        assert back.flux.shape == (2, 5, 96, 96) and torch.isfinite(back.flux).all()
        again = image_tokens(codec, back.flux, list(HSC_BANDS))
    assert again.shape == tok.shape


def test_spectrum_codec_round_trip(tiny_parts):
    codec = tiny_parts[2]
    flux, ivar, mask, wave = _spectra()
    with torch.inference_mode():
        tok = spectrum_tokens(codec, flux, ivar, mask, wave)
        assert tok.shape == (3, 273) and tok.min() >= 0 and tok.max() < 1024
        back = codec.decode(tok, wavelength=torch.from_numpy(wave))
    assert back.flux.shape == flux.shape and torch.isfinite(back.flux).all()


def test_image_encode_leaves_input_unchanged(tiny_parts):
    """0.0.2's ImageCodec.encode clamps and rescales its input in place; FMB passes a copy."""
    from aion.modalities import HSCImage

    codec = tiny_parts[1]
    x = torch.full((1, 5, 96, 96), 1000.0)
    before = x.clone()
    with torch.inference_mode():
        image_tokens(codec, x, list(HSC_BANDS))
    assert torch.equal(x, before)
    raw = x.clone()
    with torch.inference_mode():
        codec.encode(HSCImage(flux=raw, bands=list(HSC_BANDS)))  # the fault itself, still there
    assert not torch.equal(raw, before)


def test_spectrum_codec_needs_matching_dimensions():
    """0.0.2's SpectrumCodec defaults disagree with themselves; FMB's configuration does not."""
    from aion.codecs import SpectrumCodec

    with pytest.raises(AssertionError, match="latent_channels"):
        SpectrumCodec()
    cfg = spectrum_codec_config("tiny")
    assert cfg["latent_channels"] == cfg["encoder_dims"][-1] and cfg["embedding_dim"] == cfg["dim"]
    base = spectrum_codec_config("base")
    assert base["latent_channels"] == 768 and base["embedding_dim"] == 10
