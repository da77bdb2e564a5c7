"""Image rendering: Sersic profiles on an oversampled grid, Moffat PSFs via FFT, RGB composites."""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft as sfft
from scipy.special import gammaincinv

from fmb.datasets.synthetic import survey

#: RGB asinh stretch: softening (nanomaggies) and the flux mapped to full scale
RGB_SOFTENING = 0.02
RGB_MAX = 2.0


@functools.lru_cache(maxsize=4)
def model_grid(stamp: int, oversample: int = survey.OVERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """Oversampled pixel-centre coordinates (arcsec) ``X, Y`` [stamp*os, stamp*os], origin at the centre."""
    n = stamp * oversample
    c = ((np.arange(n) - n / 2 + 0.5) * survey.PIXEL_SCALE / oversample).astype(np.float32)
    x, y = np.meshgrid(c, c)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=4)
def psf_otf(stamp: int, oversample: int = survey.OVERSAMPLE) -> np.ndarray:
    """rfft2 of the normalised Moffat PSF of each band on the oversampled grid [4, n, n//2+1] (complex64)."""
    x, y = (a.astype(np.float64) for a in model_grid(stamp, oversample))
    out = []
    for fwhm, beta in zip(survey.PSF_FWHM, survey.PSF_BETA):
        alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        k = (1.0 + (x**2 + y**2) / alpha**2) ** (-beta)
        out.append(sfft.rfft2(np.fft.ifftshift(k / k.sum())))
    otf = np.stack(out).astype(np.complex64)
    otf.setflags(write=False)
    return otf


def sersic(
    x: np.ndarray,
    y: np.ndarray,
    re: np.ndarray,
    n: np.ndarray,
    q: np.ndarray,
    pa: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
) -> np.ndarray:
    """Unit-flux elliptical Sersic profiles [B, ny, nx] (float32, one per parameter row)."""
    f32 = np.float32
    re, n, q, pa, x0, y0 = (np.asarray(a, np.float64) for a in (re, n, q, pa, x0, y0))
    ca, sa = np.cos(pa).astype(f32)[:, None, None], np.sin(pa).astype(f32)[:, None, None]
    dx, dy = x[None] - x0.astype(f32)[:, None, None], y[None] - y0.astype(f32)[:, None, None]
    xp, yp = dx * ca + dy * sa, dy * ca - dx * sa
    qq = q.astype(f32)[:, None, None]
    r = np.sqrt(xp**2 * qq + yp**2 / qq) + f32(1e-4)
    b = gammaincinv(2.0 * n, 0.5).astype(f32)[:, None, None]
    inv_n = (1.0 / n).astype(f32)[:, None, None]
    img = np.exp(-b * ((r / re.astype(f32)[:, None, None]) ** inv_n - f32(1.0)))
    return img / img.sum((1, 2), keepdims=True)


def render(pre: np.ndarray, stamp: int, oversample: int = survey.OVERSAMPLE) -> np.ndarray:
    """Convolve pre-PSF flux maps [B, 4, n, n] (flux per oversampled pixel) with the band PSFs and
    bin to [B, 4, stamp, stamp] (flux per pixel)."""
    n = stamp * oversample
    pre = np.asarray(pre, np.float32)
    im = sfft.irfft2(sfft.rfft2(pre, workers=-1) * psf_otf(stamp, oversample)[None], s=(n, n), workers=-1)
    return im.reshape(pre.shape[0], 4, stamp, oversample, stamp, oversample).sum((3, 5))


def rgb_composite(images: np.ndarray) -> np.ndarray:
    """uint8 [B, 3, H, W] composites of [B, 4, H, W] VIS/Y/J/H images: R=H, G=(Y+J)/2, B=VIS, asinh."""
    chans = np.stack([images[:, 3], 0.5 * (images[:, 1] + images[:, 2]), images[:, 0]], axis=1)
    st = np.arcsinh(np.maximum(chans, 0.0) / RGB_SOFTENING) / np.arcsinh(RGB_MAX / RGB_SOFTENING)
    return np.rint(255.0 * np.clip(st, 0.0, 1.0)).astype(np.uint8)
