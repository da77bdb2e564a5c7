"""Canonical FMB fields -> AstroCLIP inputs, as upstream fed its networks (contract: ``plugin.INPUT_CONTRACT``).

Image (held against upstream ``AstroClipCollator`` + ``ToRGB`` by ``tests/test_golden.py``):

1. core's :func:`fmb.adapt.adapt_images` takes the contract's ``g, r, z`` bands (by name, else the data
   band nearest in wavelength: Euclid ``VIS, Y, J, H`` gives ``g, r <- VIS`` and ``z <- Y``), resamples
   the stamps from the data's pixel scale to the Legacy Survey's 0.262"/px (flux-conserving) and centre-crops
   or zero-pads them to 144 px. A native 152-px Legacy Survey stamp is centre-cropped exactly as upstream's
   ``CenterCrop(144)`` does; a 0.1"/px stamp keeps its angular size (it is not blown up to 144 px).
2. the Legacy-Survey-viewer arcsinh RGB (upstream ``ToRGB``: ``m = 0.03``, ``Q = 20``, scales 6.0 / 3.4 / 2.2
   for g / r / z, planes 0, 1, 2 = z, r, g, clipped to [0, 1]).
3. no transpose: upstream's export stores cutouts transposed (``.T``), ``ToRGB`` transposes to ``C, W, H``
   and the collator's ``permute(0, 3, 2, 1)`` transposes back, so its network sees the cutout's own
   ``[row, col]`` orientation (cropping commutes with the stretch, which is per pixel).

Non-finite pixels count as 0; an image with no finite pixel is missing.

Spectrum: flux on the DESI grid (3600 + 0.8 i Angstrom, 7781 pixels), unnormalised (SpecFormer standardises
inside the network). Usable pixels are unmasked,
finite, with ivar > 0. Spectra on another grid are linearly interpolated onto the DESI grid from
their usable pixels; masked pixels inside the covered range are linearly interpolated from their
neighbours; DESI pixels outside the usable range get the mean of the usable pixels (so they
standardise to 0 and leave the mean token unchanged). A spectrum with no usable pixel is missing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import torch

from fmb.adapt import adapt_images, plan_image
from fmb.contracts import ImageContract
from fmb.data import canonical as C
from fmb.errors import DataError
from fmb_astroclip.plugin import INPUT_CONTRACT

RGB_M = 0.03
RGB_Q = 20.0
RGB_SCALES = (6.0, 3.4, 2.2)  # g, r, z (upstream ToRGB)
DESI_GRID = C.DESI_WAVE_START + C.DESI_WAVE_STEP * np.arange(C.DESI_NPIX)


def image_contract(size: int = 144) -> ImageContract:
    """The declared image contract, with the network's input size (``size``; 144 for the official model)."""
    contract = INPUT_CONTRACT.image
    if contract is None:  # pragma: no cover - the plugin declares one
        raise DataError("astroclip: the plugin declares no image contract")
    return contract if contract.stamp_size == size else replace(contract, stamp_size=size)


def to_rgb(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` g, r, z nanomaggies -> ``[N, 3, H, W]`` arcsinh RGB in [0, 1], planes z, r, g.

    Upstream ``ToRGB``: ``I = mean_b max(0, s_b x_b + m)``, ``plane_b = (s_b x_b + m) asinh(Q I) / (sqrt(Q) I)``
    (``I`` nudged by 1e-6 where 0 after ``asinh(Q I)`` is taken), clipped to [0, 1].
    """
    x = torch.as_tensor(np.asarray(images, np.float32))
    scaled = torch.stack([x[:, i] * s + RGB_M for i, s in enumerate(RGB_SCALES)], dim=1)
    intensity = scaled.clamp(min=0).mean(dim=1, keepdim=True)
    fi = torch.arcsinh(RGB_Q * intensity) / np.sqrt(RGB_Q)
    intensity = intensity + (intensity == 0) * 1e-6
    return (scaled * fi / intensity).clamp(0, 1).flip(1)


def image_plan(schema: pa.Schema, size: int = 144) -> dict:
    """What :func:`image_inputs` does to images of this schema (band map, resampling, units)."""
    return {
        **plan_image(schema, image_contract(size)),
        "stretch": "upstream ToRGB (see module docstring)",
        "orientation": "natural (no transpose)",
    }


def image_inputs(batch: pa.RecordBatch, size: int = 144) -> tuple[torch.Tensor, np.ndarray]:
    """Network images ``[N, 3, size, size]`` and a ``[N]`` bool array of usable rows."""
    raw = C.column_array(batch, C.IMAGE)
    if raw.ndim != 4:
        raise DataError(f"astroclip: image field has shape {raw.shape[1:]}, expected bands x H x W")
    ok = np.isfinite(raw).reshape(len(raw), -1).any(axis=1)
    grz, _ = adapt_images(raw, batch.schema, image_contract(size))
    return to_rgb(grz).contiguous(), ok


def _fill_row(wave: np.ndarray, flux: np.ndarray, usable: np.ndarray) -> np.ndarray:
    w, f = wave[usable], flux[usable].astype(np.float64)
    order = np.argsort(w)
    w, f = w[order], f[order]
    out = np.interp(DESI_GRID, w, f)
    out[(DESI_GRID < w[0]) | (DESI_GRID > w[-1])] = f.mean()
    return out


def spectrum_inputs(batch: pa.RecordBatch) -> tuple[torch.Tensor, np.ndarray]:
    """Spectra on the DESI grid ``[N, 7781]`` and a ``[N]`` bool array of usable rows."""
    flux = C.column_array(batch, C.FLUX)
    ivar = C.column_array(batch, C.IVAR)
    mask = C.column_array(batch, C.MASK, bool)
    usable = ~mask & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    ok = usable.any(axis=1)
    wave = C.wavelength(batch)
    out = np.zeros((len(flux), C.DESI_NPIX), np.float32)
    on_grid = wave.ndim == 1 and wave.shape == DESI_GRID.shape and np.allclose(wave, DESI_GRID)
    for i in np.flatnonzero(ok):
        row_wave = wave if wave.ndim == 1 else wave[i]
        if on_grid and usable[i].all():
            out[i] = flux[i]
        else:
            out[i] = _fill_row(row_wave, flux[i], usable[i])
    return torch.from_numpy(out), ok
