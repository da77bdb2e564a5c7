"""Codec calls with the polymathic-aion 0.0.2 faults guarded.

* ``ImageCodec.encode`` changes its input in place (the centre crop is a view; the clamp and
  the HSC zero-point rescale write into it): :func:`image_tokens` always passes a copy.
* HSC decode fails (``RescaleToLegacySurvey`` calls a missing ``_reverse_zeropoint``):
  :func:`fix_hsc_decode` gives the codec's rescaler the inverse it needs.
* SpectrumCodec's defaults disagree with themselves: see :func:`fmb_aion.sizes.spectrum_codec_config`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def modality_class(name: str) -> Any:
    import aion.modalities as M

    return getattr(M, name)


def image_tokens(
    codec: Any, flux: torch.Tensor | np.ndarray, bands: list[str], modality: str = "HSCImage"
) -> torch.Tensor:
    """``[N, 576]`` image tokens of ``flux`` [N, B, 96, 96] in the codec's units; ``flux`` is left unchanged."""
    x = torch.as_tensor(flux, dtype=torch.float32).to(next(codec.parameters()).device, copy=True)
    return codec.encode(modality_class(modality)(flux=x, bands=list(bands)))


def spectrum_tokens(
    codec: Any, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, wavelength: np.ndarray
) -> torch.Tensor:
    """``[N, 273]`` DESI spectrum tokens (normalisation token first)."""
    from aion.modalities import DESISpectrum

    device = next(codec.parameters()).device

    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype).to(device, copy=True)

    return codec.encode(
        DESISpectrum(
            flux=t(flux, torch.float32),
            ivar=t(ivar, torch.float32),
            mask=t(mask, torch.bool),
            wavelength=t(wavelength, torch.float32),
        )
    )


def fix_hsc_decode(codec: Any) -> Any:
    """Make HSC decoding work: the rescaler's ``backward`` multiplies by the zero-point factor."""
    rescaler = codec.rescaler
    if not hasattr(rescaler, "_reverse_zeropoint"):
        rescaler._reverse_zeropoint = rescaler.convert_zeropoint
    return codec
