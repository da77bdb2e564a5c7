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
