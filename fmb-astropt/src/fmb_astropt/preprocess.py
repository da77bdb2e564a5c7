"""Canonical batches -> AstroPT tokens, as astroPT v2.0 was trained.

What v2.0 saw (astropt 2.0.9 ``scripts/train.py`` ``process_galaxy_wrapper`` + ``normalise``,
``astropt/local_datasets.py`` ``process_galaxy``/``spiralise``; data: the ``image_crop`` column of
``Smith42/galaxies``, 8-bit Legacy Survey DR8 g,r,z RGB JPEG cutouts): an ``H x W x 3`` uint8 array,
``swapaxes(0, 2)`` (so the network's rows are the image's columns), cut into ``p x p`` patches flattened
as ``(p1 p2 c)`` in raster order, each patch standardised by its own mean and (unbiased) std with
``+1e-8``, stored as float16, then put in spiral order (centre first); positions ``0 .. T-1``.

FMB reproduces that exactly for 8-bit RGB input (golden test ``fmb-astropt/tests/test_golden.py``) and
gets there from canonical float images by

1. resampling to the contract's 0.262 "/px and cropping/padding to ``image_size`` around the centre
   (:func:`fmb.adapt.resample_to_scale`, flux conserving); no resize of the whole stamp;
2. bands -> 3 planes R, G, B (default z, r, g; Euclid ``H, Y+J, VIS``: reddest first);
3. the Legacy Survey viewer's colour rendering (:func:`lupton_rgb`: Lupton et al. 2004 arcsinh of the
   mean intensity, per-plane scales z 2.2, r 3.4, g 6.0, offset m = 0.03, Q = 20, clipped to [0, 1]),
   quantised to uint8 like a JPEG's pixels (JPEG compression artefacts are not reproduced);
4. the tokenisation above.

``input=rgb`` takes the canonical ``rgb`` column (uint8) instead, centre-cropped/padded to ``image_size``.
``stretch=asinh`` keeps FMB's former float path (``asinh(x / softening)``, no 8-bit quantisation).
The patch size comes from the checkpoint's image modality (``patch_size``).
Spectra: standardised by the mean and std of the good pixels (masked or ivar <= 0 pixels -> 0),
cut into patches of 256 pixels with the (lambda - 3000) / 7000 wavelength of every pixel as the
position (zero padding at the end, as astropt pads).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from fmb.errors import ModelError
from fmb_astropt.config import EUCLID_CHANNELS, PATCH, SPECTRUM_PATCH, WAVE_OFFSET, WAVE_SCALE

EPS = 1e-8


@lru_cache(maxsize=8)
def spiral_order(n: int) -> np.ndarray:
    """Raster indices of an ``n x n`` patch grid in spiral order, starting at the centre.

    The official order is the clockwise spiral that starts at the top-left corner, read backwards.
    """
    grid = np.arange(n * n).reshape(n, n)
    path: list[int] = []
    while grid.size:
        path.extend(grid[0])  # top row, left to right, then rotate what is left
        grid = np.rot90(grid[1:])
    return np.asarray(path[::-1], dtype=np.int64)


def channel_groups(bands: list[str], channels: str, n_chan: int) -> list[list[int]]:
    """Band indices averaged into each model channel."""
    if not channels:
        if n_chan == 3 and {"VIS", "Y", "J", "H"} <= set(bands):
            channels = EUCLID_CHANNELS
        elif n_chan == 3 and len(bands) == 3:
            channels = ",".join(reversed(bands))  # canonical order is blue -> red; models want red first
        elif n_chan == 1:
            channels = "+".join(bands)
        else:
            raise ModelError(
                f"astropt: cannot map bands {','.join(bands)} to {n_chan} channels; "
                f"give --model astropt:channels=A,B+C,D"
            )
    groups = []
    for entry in channels.split(","):
        names = [b for b in entry.split("+") if b]
        missing = [b for b in names if b not in bands]
        if not names or missing:
            raise ModelError(
                f"astropt: channels {channels!r} names bands {missing or entry!r} the image "
                f"does not have (bands: {','.join(bands)})"
            )
        groups.append([bands.index(b) for b in names])
    if len(groups) != n_chan:
        raise ModelError(f"astropt: channels {channels!r} gives {len(groups)} channels, the model takes {n_chan}")
    return groups


#: Legacy Survey viewer colour scheme for g, r, z (plane index in R, G, B order, scale), m and Q
RGB_SCALES = {"z": (0, 2.2), "r": (1, 3.4), "g": (2, 6.0)}
RGB_M, RGB_Q = 0.03, 20.0


def lupton_rgb(
    planes: np.ndarray, scales: tuple[float, float, float] = (2.2, 3.4, 6.0), m: float = RGB_M, q: float = RGB_Q
) -> np.ndarray:
    """``[N, 3, H, W]`` flux (nanomaggies) in R, G, B plane order -> uint8 ``[N, 3, H, W]``.

    Lupton et al. (2004, PASP 116, 133) arcsinh colour stretch as legacypipe's ``sdss_rgb`` renders the
    Legacy Survey viewer JPEGs: ``v_c = max(0, x_c * s_c + m)``, ``I = mean_c v_c``,
    ``out_c = v_c * asinh(Q I) / sqrt(Q) / I``, clipped to [0, 1], times 255 and truncated.

    Every pixel is rendered on its own, so only the smallest row/column window that holds every non-zero
    pixel of the batch is computed; the zero pixels around it (the padding of a stamp smaller than the
    model's image size, often most of the image) all render to the colour of zero flux, computed once by
    the same formula. The result is bit for bit that of rendering every pixel (test_preprocess.py).
    """
    x = np.asarray(planes)
    c, h, w = x.shape[1:]
    lit = x != 0
    rows, cols = np.flatnonzero(lit.any(axis=(0, 1, 3))), np.flatnonzero(lit.any(axis=(0, 1, 2)))
    del lit
    if rows.size == 0:
        return np.broadcast_to(_lupton_zero(c, scales, m, q), x.shape).copy()
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (r0, r1, c0, c1) == (0, h, 0, w):
        return _lupton(x, scales, m, q)
    out = np.empty(x.shape, np.uint8)
    out[...] = _lupton_zero(c, scales, m, q)
    out[:, :, r0:r1, c0:c1] = _lupton(x[:, :, r0:r1, c0:c1], scales, m, q)
    return out


def _lupton_zero(c: int, scales: tuple[float, ...], m: float, q: float) -> np.ndarray:
    """``[1, c, 1, 1]``: :func:`_lupton` of zero flux (rendered from a small block, as any other pixels)."""
    return _lupton(np.zeros((1, c, 4, 4), np.float32), scales, m, q)[:, :, :1, :1]


def _lupton(x: np.ndarray, scales: tuple[float, ...], m: float, q: float) -> np.ndarray:
    """The rendering of :func:`lupton_rgb` for every pixel, float64, in place on one working array (the same
    operations in the same order as the formula, so the same bits)."""
    v = np.asarray(x, np.float64) * np.asarray(scales, np.float64)[None, :, None, None]
    v += m
    np.maximum(0.0, v, out=v)
    inten = v.mean(axis=1, keepdims=True)
    f = np.arcsinh(q * inten)
    f /= np.sqrt(q)
    inten[inten == 0] = 1e-6
    v *= f
    v /= inten
    np.clip(v, 0.0, 1.0, out=v)
    v *= 255.0
    return v.astype(np.uint8)


def rgb_tokens(rgb: np.ndarray | torch.Tensor, patch: int = PATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit ``[N, 3, H, W]`` (planes R, G, B; H, W multiples of ``patch``) -> tokens ``[N, T, patch**2 * 3]``
    and positions ``[N, T]``, as v2.0's training data path makes them (see the module docstring)."""
    x = torch.as_tensor(np.asarray(rgb))  # patches are cut and ordered in uint8 (a quarter of the bytes to move)
    n, c, h, w = x.shape
    if h % patch or w % patch:
        raise ModelError(f"astropt: image of {h} x {w} px is not a whole number of {patch}-px patches")
    x = x.transpose(2, 3)  # HWC .swapaxes(0, 2) == CWH: the network's rows are the image's columns
    gh, gw = w // patch, h // patch
    if gh != gw:
        raise ModelError(f"astropt: spiral order needs a square patch grid, got {gh} x {gw}")
    # c (h p1) (w p2) -> (h w) (p1 p2 c), then spiral order; each token is standardised on its own, so the
    # order of tokens does not change their values
    tok = x.reshape(n, c, gh, patch, gw, patch).permute(0, 2, 4, 3, 5, 1).reshape(n, gh * gw, patch * patch * c)
    tok = torch.index_select(tok, 1, torch.from_numpy(spiral_order(gh))).to(torch.float32)
    std, mean = torch.std_mean(tok, dim=2, keepdim=True)
    tok = tok.sub_(mean).div_(std.add_(EPS)).to(torch.float16).to(torch.float32)  # v2.0 trained on float16 patches
    pos = torch.arange(gh * gw, dtype=torch.long).expand(n, -1)
    return tok, pos


def centre_crop_pad(x: np.ndarray, size: int) -> np.ndarray:
    """Last two axes centre-cropped (offset ``(n - size) // 2``) or zero-padded to ``size``."""
    for axis in (-2, -1):
        n = x.shape[axis]
        if n > size:
            x = np.take(x, np.arange((n - size) // 2, (n - size) // 2 + size), axis=axis)
        elif n < size:
            pad = [(0, 0)] * x.ndim
            pad[axis] = ((size - n) // 2, size - n - (size - n) // 2)
            x = np.pad(x, pad)
    return x


def image_tokens(
    images: np.ndarray,
    bands: list[str],
    image_size: int,
    n_chan: int = 3,
    channels: str = "",
    softening: float = 0.02,
    pixel_scale: float | None = None,
    target_scale: float = 0.262,
    patch: int = PATCH,
    stretch: str = "rgb",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float ``[N, B, H, W]`` images (nanomaggies, ``pixel_scale`` arcsec/px; ``None`` = already at
    ``target_scale``) -> tokens ``[N, T, patch**2 * n_chan]`` and positions ``[N, T]`` (long)."""
    from fmb.adapt import resample_to_scale

    groups = channel_groups(bands, channels, n_chan)
    x = np.nan_to_num(np.asarray(images, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = np.stack([x[:, g[0]] if len(g) == 1 else x[:, g].mean(axis=1) for g in groups], axis=1)
    x, _ = resample_to_scale(x, pixel_scale or target_scale, target_scale, image_size)
    if stretch == "rgb" and n_chan == 3:
        return rgb_tokens(lupton_rgb(x), patch)
    t = torch.from_numpy(x)
    if softening > 0:
        t = torch.asinh(t / softening)
    t = t.transpose(2, 3)
    n, c, s, _ = t.shape
    g = s // patch
    tok = t.reshape(n, c, g, patch, g, patch).permute(0, 2, 4, 3, 5, 1).reshape(n, g * g, patch * patch * c)
    tok = torch.index_select(tok, 1, torch.from_numpy(spiral_order(g)))
    std, mean = torch.std_mean(tok, dim=2, keepdim=True)
    tok.sub_(mean).div_(std.add_(EPS))
    pos = torch.arange(g * g, dtype=torch.long).expand(n, -1)
    return tok, pos


def spectrum_tokens(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, wavelength: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Spectra ``[N, L]`` -> tokens ``[N, T, 256]``, positions ``[N, T, 256]`` and a ``[N]`` has-spectrum flag."""
    flux = np.asarray(flux, dtype=np.float64)
    good = ~np.asarray(mask, bool) & np.isfinite(flux) & np.isfinite(ivar) & (np.asarray(ivar) > 0)
    count = good.sum(axis=1)
    valid = count > 0
    f = np.where(good, flux, 0.0)
    mean = f.sum(axis=1, keepdims=True) / np.maximum(count, 1)[:, None]
    var = (np.where(good, flux - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(count - 1, 1)[:, None]
    f = np.where(good, (flux - mean) / (np.sqrt(var) + EPS), 0.0)
    n, length = f.shape
    wave = np.broadcast_to(np.asarray(wavelength, np.float64), (n, length))
    wpos = (wave - WAVE_OFFSET) / WAVE_SCALE
    pad = (-length) % SPECTRUM_PATCH
    if pad:
        f = np.pad(f, ((0, 0), (0, pad)))
        wpos = np.pad(wpos, ((0, 0), (0, pad)))
    t = f.shape[1] // SPECTRUM_PATCH
    tok = torch.from_numpy(f.astype(np.float32).reshape(n, t, SPECTRUM_PATCH))
    pos = torch.from_numpy(np.ascontiguousarray(wpos, dtype=np.float32).reshape(n, t, SPECTRUM_PATCH))
    return tok, pos, valid
