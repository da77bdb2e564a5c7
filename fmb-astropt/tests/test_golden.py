"""FMB's AstroPT tokenisation against upstream astropt 2.0.9 (fixture: external/golden/make_astropt_golden.py),
orientation, pixel-scale resampling, the checkpoint's patch size and case-insensitive offline hub ids."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fmb_astropt.preprocess import image_tokens, lupton_rgb, rgb_tokens

GOLDEN = np.load(Path(__file__).parent / "data" / "astropt_golden.npz")


@pytest.mark.parametrize("patch", [16, 8])
def test_rgb_tokens_match_upstream(patch):
    chw = GOLDEN["rgb_hwc"].transpose(0, 3, 1, 2)  # canonical rgb is [3, H, W]
    tok, pos = rgb_tokens(chw, patch)
    expected = GOLDEN[f"tokens_p{patch}"]
    assert tok.shape == expected.shape == (2, (64 // patch) ** 2, patch * patch * 3)
    np.testing.assert_allclose(tok.numpy(), expected, rtol=0, atol=1e-5)
    assert torch.equal(pos[0], torch.arange(tok.shape[1]))


def _changed(a: np.ndarray, b: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.abs(a - b).max(axis=1) > 1e-3))


def test_a_corner_feature_lands_where_upstream_puts_it():
    """Image 0 has a bright block in its top-left corner: the tokens upstream made differently from the same
    image without the block are the tokens FMB changes, from 8-bit RGB and from float g,r,z stamps alike."""
    chw = GOLDEN["rgb_hwc"].transpose(0, 3, 1, 2)[:1]
    plain = chw.copy()
    plain[0, :, 2:10, 4:12] = 0
    fmb_plain = rgb_tokens(plain, 16)[0][0].numpy()
    where_upstream = _changed(GOLDEN["tokens_p16"][0], fmb_plain)
    where_fmb = _changed(rgb_tokens(chw, 16)[0][0].numpy(), fmb_plain)
    assert where_fmb == where_upstream and len(where_fmb) == 1
    x = np.zeros((1, 3, 64, 64), np.float32)
    blank = image_tokens(x, ["g", "r", "z"], 64, pixel_scale=0.262, patch=16)[0][0].numpy()
    x[0, :, 2:10, 4:12] = 5.0
    ftok = image_tokens(x, ["g", "r", "z"], 64, pixel_scale=0.262, patch=16)[0][0].numpy()
    assert _changed(ftok, blank) == where_upstream


def test_a_01_arcsec_stamp_is_resampled_to_0262():
    # a disc of radius 26.2 px at 0.1"/px is 2.62" = 10 px at 0.262"/px
    yy, xx = np.mgrid[:160, :160] - 79.5
    disc = (np.hypot(xx, yy) < 26.2).astype(np.float32) * 2.0
    x = np.broadcast_to(disc, (1, 3, 160, 160)).copy()
    from fmb.adapt import resample_to_scale

    planes, _ = resample_to_scale(x, 0.1, 0.262, 64)
    lit = planes[0, 0] > 0.5 * planes[0, 0].max()
    radius = np.sqrt(lit.sum() / np.pi)
    assert radius == pytest.approx(10.0, rel=0.08)
    tok_a, _ = image_tokens(x, ["g", "r", "z"], 64, pixel_scale=0.1, patch=16)
    tok_b, _ = rgb_tokens(lupton_rgb(planes), 16)
    np.testing.assert_allclose(tok_a.numpy(), tok_b.numpy(), atol=1e-6)


def test_lupton_rgb_is_8_bit_and_red_first():
    x = np.zeros((1, 3, 16, 16), np.float32)
    x[0, 0] = 1.0  # only the R plane (z band) is bright
    rgb = lupton_rgb(x)
    assert rgb.dtype == np.uint8 and rgb[0, 0].min() > rgb[0, 1].max()


def test_patch_size_comes_from_the_checkpoint(tmp_path):
    from astropt.model import ModalityConfig
    from astropt_helpers import load, toy_batch

    from fmb_astropt.checkpoint import build, model_args_for, save_checkpoint

    mods = [
        ModalityConfig(
            name="images", input_size=8 * 8 * 3, pos_input_size=1, patch_size=8, embed_pos=True, loss_weight=1.0
        )
    ]
    torch.manual_seed(0)
    net = build(model_args_for(4, 8, 128, modalities=mods), mods)
    f = save_checkpoint(tmp_path / "ckpt.pt", net, model_args_for(4, 8, 128, modalities=mods))
    m = load(weights=str(f), image_size=32)
    assert m.patch == 8 and m.n_chan == 3 and m.settings()["patch"] == 8
    out = m.embed(toy_batch(2))["image"]
    assert out.shape == (2, 128) and np.isfinite(out).all()


def test_offline_hub_id_is_case_insensitive(tmp_path, monkeypatch):
    from fmb.hub import cached_repo_id

    (tmp_path / "models--Smith42--astroPT_v2.0").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cached_repo_id("smith42/astropt_v2.0") == "Smith42/astroPT_v2.0"
    assert cached_repo_id("Smith42/astroPT_v2.0") == "Smith42/astroPT_v2.0"
    assert cached_repo_id("other/repo") == "other/repo"
