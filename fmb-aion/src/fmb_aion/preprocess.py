"""Canonical batches -> codec inputs: 96 x 96 images and cleaned spectra, with missing rows flagged.

Images: AION's image codec reads 96 x 96 stamps. Each axis longer than 96 pixels is
centre-cropped to 96 (pixel scale kept); a stamp still smaller than 96 (e.g. the 64 x 64
synthetic stamps) is resized bilinearly with antialiasing, and its pixel values are multiplied
by ``H * W / 96**2`` so that the total flux is conserved. Non-finite pixels become 0; a row with
no finite pixel is a missing image.

Spectra: non-finite flux, non-finite or negative ivar become masked pixels with ivar 0, masked
pixels get ivar 0. The codec itself interpolates every row from its own wavelength grid (any
length, any linear or per-row grid) onto its 8704-pixel latent grid (3500 + 0.8 i Angstrom).
A row with no unmasked pixel of positive ivar is a missing spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C

IMAGE_SIZE = 96
IMAGE_RESAMPLE = "centre-crop to 96, else flux-conserving antialiased bilinear resize"


@dataclass
class Images:
    """``flux`` float32 [N, B, 96, 96] (nanomaggies), the band names, and which rows are present."""

    flux: np.ndarray
    bands: list[str]
    valid: np.ndarray


@dataclass
class Spectra:
    """float32 ``flux``/``ivar``/``wavelength`` and bool ``mask`` [N, L], and which rows are present."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    wavelength: np.ndarray
    valid: np.ndarray


def centre_crop(x: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Crop the last two axes to at most ``size``, centred."""
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top:top + min(h, size), left:left + min(w, size)]


def resize(x: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Flux-conserving bilinear resize of ``[N, B, H, W]`` to ``size`` x ``size``."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(size, size), mode="bilinear",
                      align_corners=False, antialias=True)
    return (t * (h * w / size**2)).numpy()


def images_from_batch(batch: pa.RecordBatch, size: int = IMAGE_SIZE) -> Images:
    """The batch's images as codec-sized stamps (see the module docstring)."""
    x = C.column_array(batch, C.IMAGE, np.float32)
    finite = np.isfinite(x)
    valid = finite.reshape(len(x), -1).any(axis=1)
    x = np.where(finite, x, 0.0).astype(np.float32)
    x = resize(centre_crop(x, size), size).astype(np.float32, copy=False)
    return Images(x, C.image_bands(batch.schema), valid)


def spectra_from_batch(batch: pa.RecordBatch) -> Spectra:
    """The batch's spectra, cleaned for the codec (see the module docstring)."""
    flux = C.column_array(batch, C.FLUX, np.float32)
    ivar = C.column_array(batch, C.IVAR, np.float32)
    mask = C.column_array(batch, C.MASK, bool)
    bad = mask | ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar < 0)
    flux = np.where(np.isfinite(flux), flux, 0.0).astype(np.float32)
    ivar = np.where(bad, 0.0, ivar).astype(np.float32)
    wave = np.asarray(C.wavelength(batch), np.float32)
    if wave.ndim == 1:
        wave = np.broadcast_to(wave, flux.shape)
    valid = (~bad & (ivar > 0)).any(axis=1)
    return Spectra(flux, ivar, bad, np.ascontiguousarray(wave), valid)
