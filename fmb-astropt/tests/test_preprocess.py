"""Tokenisation: spiral order, per-patch standardisation, channel mapping, spectrum patches."""

import numpy as np
import pytest

from fmb.errors import ModelError
from fmb_astropt.preprocess import channel_groups, image_tokens, spectrum_tokens, spiral_order


def test_spiral_starts_at_the_centre_and_is_a_permutation():
    order = spiral_order(4)
    assert sorted(order) == list(range(16))
    assert order[0] == 9 and order[-1] == 0  # centre first, top-left corner last
    assert list(spiral_order(3)) == [4, 3, 6, 7, 8, 5, 2, 1, 0]


def test_patches_are_standardised_and_sized():
    rng = np.random.default_rng(0)
    tok, pos = image_tokens(rng.normal(size=(2, 4, 20, 20)), ["VIS", "Y", "J", "H"], 32)
    assert tok.shape == (2, 4, 768) and pos.shape == (2, 4)
    assert np.allclose(tok.mean(-1), 0, atol=1e-3) and np.allclose(tok.std(-1), 1, atol=2e-3)  # float16 patches


def test_euclid_channel_mapping():
    assert channel_groups(["VIS", "Y", "J", "H"], "", 3) == [[3], [1, 2], [0]]
    assert channel_groups(["g", "r", "z"], "", 3) == [[2], [1], [0]]
    with pytest.raises(ModelError):
        channel_groups(["a", "b"], "", 3)


def test_spectrum_tokens_positions_and_missing_rows():
    flux = np.ones((2, 300), np.float32)
    mask = np.zeros((2, 300), bool)
    mask[1] = True
    tok, pos, valid = spectrum_tokens(flux, np.ones_like(flux), mask, 3600 + 0.8 * np.arange(300))
    assert tok.shape == pos.shape == (2, 2, 256)
    assert list(valid) == [True, False]
    assert pos[0, 0, 0].item() == pytest.approx((3600 - 3000) / 7000)
    assert pos[0, 1, 44:].abs().max().item() == 0.0  # zero padding after the last pixel


def _lupton_every_pixel(planes, scales=(2.2, 3.4, 6.0), m=0.03, q=20.0):
    """The Lupton formula of ``lupton_rgb``'s docstring on every pixel, whole-array (no window)."""
    v = np.maximum(0.0, np.asarray(planes, np.float64) * np.asarray(scales, np.float64)[None, :, None, None] + m)
    inten = v.mean(axis=1, keepdims=True)
    f = np.arcsinh(q * inten) / np.sqrt(q)
    inten = np.where(inten == 0, 1e-6, inten)
    return (np.clip(v * f / inten, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("case", ["padded", "offcentre", "full", "blank", "one_pixel"])
def test_lupton_rgb_of_a_padded_stamp_is_bit_identical_to_every_pixel(case):
    """``lupton_rgb`` renders only the window holding non-zero flux; the padding around it must come out
    exactly as rendering every pixel would make it (same uint8 values, no off-by-one at the window)."""
    from fmb_astropt.preprocess import lupton_rgb

    rng = np.random.default_rng(3)
    x = np.zeros((3, 3, 48, 48), np.float32)
    if case == "padded":
        x[:, :, 12:36, 12:36] = rng.normal(0, 0.5, size=(3, 3, 24, 24))
    elif case == "offcentre":
        x[1, 2, 0:5, 40:48] = rng.normal(0, 3.0, size=(5, 8))
        x[0, 0, 30, 7] = -0.0  # a negative zero counts as zero flux
    elif case == "full":
        x = rng.normal(0, 0.2, size=x.shape).astype(np.float32)
    elif case == "one_pixel":
        x[2, 1, 47, 0] = 1e-3
    got = lupton_rgb(x)
    assert got.dtype == np.uint8 and got.shape == x.shape
    np.testing.assert_array_equal(got, _lupton_every_pixel(x))


def test_rgb_tokens_are_bit_identical_to_standardising_before_reordering():
    """``rgb_tokens`` cuts and spirals the patches in uint8 and standardises afterwards: the same bits as
    standardising the float patches in raster order first (each token's statistics are its own)."""
    import torch

    from fmb_astropt.preprocess import EPS, rgb_tokens

    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(2, 3, 48, 48)).astype(np.uint8)
    rgb[:, :, :16] = 9  # constant patches (std 0)
    x = torch.as_tensor(rgb).to(torch.float32).transpose(2, 3)
    tok = x.reshape(2, 3, 3, 16, 3, 16).permute(0, 2, 4, 3, 5, 1).reshape(2, 9, 768)
    std, mean = torch.std_mean(tok, dim=2, keepdim=True)
    tok = ((tok - mean) / (std + EPS)).to(torch.float16).to(torch.float32)
    expected = torch.index_select(tok, 1, torch.from_numpy(spiral_order(3)))
    got, pos = rgb_tokens(rgb, 16)
    assert torch.equal(got, expected) and got.dtype == torch.float32
    assert torch.equal(pos, torch.arange(9).expand(2, -1))
