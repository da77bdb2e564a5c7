"""Canonical FMB fields -> AstroCLIP inputs (what upstream fed its backbones, and how we adapt other surveys).

Image: the Legacy-Survey-viewer arcsinh RGB that AstroCLIP was trained on (upstream ``ToRGB``:
``m = 0.03``, ``Q = 20``, per-channel scales 6.0 / 3.4 / 2.2 for blue / green / red, clipped to [0, 1]).
Band mapping (blue, green, red): ``g, r, z`` when the data has them (upstream); Euclid
``VIS, (Y + J) / 2, H``; otherwise the first, middle and last band. The stamp is resized
(bilinear, antialiased) to 144 x 144 and spatially transposed (``C, W, H``) as upstream's collator
did. Non-finite pixels count as 0; an image with no finite pixel is missing.

Spectrum: flux on the DESI grid (3600 + 0.8 i Angstrom, 7781 pixels). Usable pixels are unmasked,
finite, with ivar > 0. Spectra on another grid are linearly interpolated onto the DESI grid from
their usable pixels; masked pixels inside the covered range are linearly interpolated from their
neighbours; DESI pixels outside the usable range get the mean of the usable pixels (so they
standardise to 0 and leave the mean token unchanged). A spectrum with no usable pixel is missing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from fmb.data import canonical as C
from fmb.errors import DataError

RGB_M = 0.03
RGB_Q = 20.0
RGB_SCALES = (6.0, 3.4, 2.2)  # blue, green, red (upstream g, r, z)
DESI_GRID = C.DESI_WAVE_START + C.DESI_WAVE_STEP * np.arange(C.DESI_NPIX)


def band_mapping(bands: list[str]) -> list[list[int]]:
    """Indices of the bands averaged into the blue, green and red planes."""
    lower = [b.strip() for b in bands]
    if all(b in lower for b in ("g", "r", "z")):
        return [[lower.index("g")], [lower.index("r")], [lower.index("z")]]
    if all(b in lower for b in ("VIS", "Y", "J", "H")):
        return [[lower.index("VIS")], [lower.index("Y"), lower.index("J")], [lower.index("H")]]
    n = len(lower)
    return [[0], [n // 2], [n - 1]]


def to_rgb(images: np.ndarray, bands: list[str]) -> torch.Tensor:
    """``[N, B, H, W]`` nanomaggies -> ``[N, 3, H, W]`` arcsinh RGB in [0, 1], channels red, green, blue.

    (Upstream's plane 0 is z, i.e. red.)
    """
    x = torch.from_numpy(np.nan_to_num(np.asarray(images, np.float32), nan=0.0, posinf=0.0, neginf=0.0))
    planes = [x[:, idx].mean(dim=1) for idx in band_mapping(bands)]
    scaled = torch.stack([p * s + RGB_M for p, s in zip(planes, RGB_SCALES)], dim=1)
    intensity = scaled.clamp(min=0).mean(dim=1, keepdim=True)
    fi = torch.arcsinh(RGB_Q * intensity) / np.sqrt(RGB_Q)
    intensity = intensity + (intensity == 0) * 1e-6
    return (scaled * fi / intensity).clamp(0, 1).flip(1)


def image_inputs(batch: pa.RecordBatch, size: int = 144) -> tuple[torch.Tensor, np.ndarray]:
    """Network images ``[N, 3, size, size]`` and a ``[N]`` bool array of usable rows."""
    raw = C.column_array(batch, C.IMAGE)
    if raw.ndim != 4:
        raise DataError(f"astroclip: image field has shape {raw.shape[1:]}, expected bands x H x W")
    ok = np.isfinite(raw).reshape(len(raw), -1).any(axis=1)
    rgb = to_rgb(raw, C.image_bands(batch.schema))
    if rgb.shape[-2:] != (size, size):
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return rgb.transpose(-1, -2).contiguous(), ok


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
