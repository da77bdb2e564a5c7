"""Canonical batches -> codec inputs: 96 x 96 stamps on the survey's pixel grid, cleaned spectra.

Images (contract: :data:`fmb_aion.bands.PIXEL_SCALE`; AION's codec reads 96 x 96 pixels of 0.262 "/px
for the Legacy Survey slots, 0.168 "/px for HSC). Each stamp is

1. resampled from its own pixel scale (the image field's ``pixel_scale`` metadata, arcsec/px) to the
   target survey's, when they differ by more than 0.1 %: :func:`resample` (core's
   :func:`fmb.adapt.resample_to_scale`) samples the stamp bilinearly onto a 96 x 96 grid of the target
   pixel scale centred on the stamp centre (zeros outside the stamp; values multiplied by
   ``(target / source) ** 2`` so that a pixel still holds the flux, in nanomaggies, of the sky it now
   covers). A 0.1 "/px Euclid stamp of 64 px (6.4") fills the central 38 px
   at 0.168 "/px; an object keeps its size in arcsec.
2. at the native scale, centre-cropped or zero-padded to 96 x 96 (:func:`crop_or_pad`): the crop
   starts at ``(n - 96) // 2`` exactly as the codec's own ``CenterCrop`` does, so a native 0.262 "/px
   Legacy Survey cutout of any size >= 96 reaches the codec pixel for pixel as upstream feeds it (golden test:
   ``fmb-aion/tests/test_golden.py``). Padding puts ``(96 - n) // 2`` zero rows/columns before.

Non-finite pixels become 0; a row with no finite pixel is a missing image. An image without a finite
positive pixel scale is refused (give ``pixel_scale=`` to the dataset).

Spectra: non-finite flux, non-finite or negative ivar become masked pixels with ivar 0, masked
pixels get ivar 0. The codec itself interpolates every row from its own wavelength grid (any
length, any linear or per-row grid) onto its 8704-pixel latent grid (3500 + 0.8 i Angstrom).
A row with no unmasked pixel of positive ivar is a missing spectrum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.errors import DataError

IMAGE_SIZE = 96
PREPROCESS_VERSION = 2  # bump when what the codec sees changes (part of the embedding cache key)
IMAGE_RESAMPLE = (
    "resample to the survey pixel scale (linear, centre kept, flux per pixel scaled by area), "
    "then centre crop/zero pad to 96 like the codec's CenterCrop"
)
SCALE_TOLERANCE = 1e-3


@dataclass
class Images:
    """``flux`` float32 [N, B, 96, 96] (nanomaggies), the band names, which rows are present, and the
    resampling applied (``zoom`` = source / target pixel scale; 1.0 when none)."""

    flux: np.ndarray
    bands: list[str]
    valid: np.ndarray
    pixel_scale: float = float("nan")
    zoom: float = 1.0


@dataclass
class Spectra:
    """float32 ``flux``/``ivar``/``wavelength`` and bool ``mask`` [N, L], and which rows are present."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    wavelength: np.ndarray
    valid: np.ndarray


def crop_or_pad(x: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """The last two axes centre-cropped (start ``(n - size) // 2``, as the codec) or zero-padded to ``size``."""
    out = x
    for axis in (-2, -1):
        n = out.shape[axis]
        if n > size:
            start = (n - size) // 2
            out = np.take(out, np.arange(start, start + size), axis=axis)
        elif n < size:
            pad = [(0, 0)] * out.ndim
            pad[axis] = ((size - n) // 2, size - n - (size - n) // 2)
            out = np.pad(out, pad)
    return np.ascontiguousarray(out, dtype=np.float32)


def resample(x: np.ndarray, zoom: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """``[N, B, H, W]`` on a ``size`` x ``size`` grid ``zoom`` times finer (zoom = source / target pixel scale).

    ``zoom`` within 0.1 % of 1: :func:`crop_or_pad` (the codec's own crop offsets). Otherwise core's
    :func:`fmb.adapt.resample_to_scale` (bilinear, centre to centre, Gaussian anti-alias when shrinking,
    values times ``1 / zoom ** 2`` so a pixel holds the flux of its new area).
    """
    if abs(zoom - 1.0) <= SCALE_TOLERANCE:
        return crop_or_pad(x, size)
    from fmb.adapt import resample_to_scale

    out, _ = resample_to_scale(x, zoom, 1.0, size)
    return out


def image_pixel_scale(batch: pa.RecordBatch) -> float:
    """The image field's ``pixel_scale`` (arcsec/px); NaN when absent or not a number."""
    raw = C.field_meta(batch.schema.field(C.IMAGE), "pixel_scale")
    try:
        return float(raw) if raw is not None else float("nan")
    except ValueError:
        return float("nan")


def images_from_batch(batch: pa.RecordBatch, target_scale: float, size: int = IMAGE_SIZE) -> Images:
    """The batch's images as codec stamps on a ``target_scale`` arcsec/px grid (see the module docstring)."""
    scale = image_pixel_scale(batch)
    if not (math.isfinite(scale) and scale > 0):
        raise DataError(
            f"aion: field 'image' has no pixel scale (metadata pixel_scale={scale}); AION resamples "
            "stamps to its surveys' pixel grids, so give the dataset pixel_scale=ARCSEC_PER_PIXEL"
        )
    x = C.column_array(batch, C.IMAGE, np.float32)
    finite = np.isfinite(x)
    valid = finite.reshape(len(x), -1).any(axis=1)
    x = np.where(finite, x, 0.0).astype(np.float32)
    zoom = scale / target_scale
    x = resample(x, zoom, size)
    return Images(x, C.image_bands(batch.schema), valid, scale, 1.0 if abs(zoom - 1) <= SCALE_TOLERANCE else zoom)


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
