"""Canonical batches -> AstroPT tokens, as the official training prepared its inputs.

Images: bands -> 3 channels (default for Euclid ``H, Y+J, VIS``: reddest first, like the
R=z, G=r, B=g JPEGs the official models saw), an ``asinh(x / softening)`` stretch, the
height/width transpose that the official Hugging Face data path applied (``swapaxes(0, 2)``
on H x W x C arrays), a resize to the model's image size, 16-pixel patches flattened as
``(p1 p2 c)``, the centre-out spiral order, and each patch standardised by its own mean and std.
Spectra: standardised by the mean and std of the good pixels (masked or ivar <= 0 pixels -> 0),
cut into patches of 256 pixels with the (lambda - 3000) / 7000 wavelength of every pixel as the
position (zero padding at the end, as astropt pads).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

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
            raise ModelError(f"astropt: cannot map bands {','.join(bands)} to {n_chan} channels; "
                             f"give --model astropt:channels=A,B+C,D")
    groups = []
    for entry in channels.split(","):
        names = [b for b in entry.split("+") if b]
        missing = [b for b in names if b not in bands]
        if not names or missing:
            raise ModelError(f"astropt: channels {channels!r} names bands {missing or entry!r} the image "
                             f"does not have (bands: {','.join(bands)})")
        groups.append([bands.index(b) for b in names])
    if len(groups) != n_chan:
        raise ModelError(f"astropt: channels {channels!r} gives {len(groups)} channels, the model takes {n_chan}")
    return groups


def image_tokens(images: np.ndarray, bands: list[str], image_size: int, n_chan: int = 3,
                 channels: str = "", softening: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, B, H, W]`` images -> tokens ``[N, T, 256 * n_chan]`` and positions ``[N, T]`` (long)."""
    groups = channel_groups(bands, channels, n_chan)
    x = torch.from_numpy(np.array(images, dtype=np.float32))  # a writable copy
    x = torch.stack([x[:, g[0]] if len(g) == 1 else x[:, g].mean(dim=1) for g in groups], dim=1)
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if softening > 0:
        x = torch.asinh(x / softening)
    x = x.transpose(2, 3)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > image_size)
    n, c, s, _ = x.shape
    g = s // PATCH
    # c (h p1) (w p2) -> (h w) (p1 p2 c)
    tok = x.reshape(n, c, g, PATCH, g, PATCH).permute(0, 2, 4, 3, 5, 1).reshape(n, g * g, PATCH * PATCH * c)
    tok = torch.index_select(tok, 1, torch.from_numpy(spiral_order(g)))
    std, mean = torch.std_mean(tok, dim=2, keepdim=True)
    tok.sub_(mean).div_(std.add_(EPS))  # in place: this is the largest array of the pipeline
    pos = torch.arange(g * g, dtype=torch.long).expand(n, -1)
    return tok, pos


def spectrum_tokens(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray,
                    wavelength: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
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
