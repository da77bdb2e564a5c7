"""Make fmb-aion/tests/data/aion_golden.npz by running upstream polymathic-aion 0.0.2 code.

Run once (in an environment with ``polymathic-aion==0.0.2`` and torch) from the repository root:
``python external/golden/make_aion_golden.py``. The test ``fmb-aion/tests/test_golden.py`` holds FMB's
preprocessing against what this writes.

Inputs (seeded, made here): Legacy Survey g,r,i,z stamps (nanomaggies, 0.262"/px, 100 x 100 px, the
first with a bright blob near its top-left corner) and an HSC g,r,i,z,y stamp (HSC coadd units,
zero point 27, 0.168"/px), plus DESI-grid spectra. Outputs: what the upstream image codec makes of the
stamps before its first learned layer (``ImageCodec._encode`` up to ``image_padder``:
``CenterCrop(96)``,
``Clamp``, ``RescaleToLegacySurvey``, ``_range_compress``, ``ImagePadder``), called on an upstream
codec instance exactly as a user of AION would pass ``LegacySurveyImage`` / ``HSCImage`` data; and the
``DESISpectrum`` tensors for the spectra (upstream passes a DESI
spectrum's flux, ivar (0 where masked), mask and wavelength to the codec as they are, so the spectra
are stored once: input and expected tensors are the same arrays).
No upstream code is copied: the codec is imported and run.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[2] / "fmb-aion" / "tests" / "data" / "aion_golden.npz"
LS_BANDS = ["DES-G", "DES-R", "DES-I", "DES-Z"]
HSC_BANDS = ["HSC-G", "HSC-R", "HSC-I", "HSC-Z", "HSC-Y"]


def galaxy(rng: np.random.Generator, n_bands: int, size: int, amp: float, noise: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    q, th, r = rng.uniform(0.4, 1), rng.uniform(0, np.pi), rng.uniform(3, 8)
    u = xx * np.cos(th) + yy * np.sin(th)
    v = (-xx * np.sin(th) + yy * np.cos(th)) / q
    prof = np.exp(-np.hypot(u, v) / r)
    colours = np.linspace(0.6, 1.4, n_bands)[:, None, None]
    return (amp * colours * prof + rng.normal(0, noise, (n_bands, size, size))).astype(np.float32)


def pre_encoder(codec, flux: np.ndarray, bands: list[str], modality) -> np.ndarray:
    x = modality(flux=torch.from_numpy(flux.copy()), bands=bands)
    f = codec.center_crop(x.flux)
    f = codec.clamp(f, x.bands)
    f = codec.rescaler.forward(f, codec._get_survey(x.bands))
    f = codec._range_compress(f)
    f, _ = codec.image_padder.forward(f, x.bands)
    return f.numpy()


def main() -> None:
    from aion.codecs import ImageCodec
    from aion.modalities import DESISpectrum, HSCImage, LegacySurveyImage

    assert version("polymathic-aion") == "0.0.2", version("polymathic-aion")
    rng = np.random.default_rng(20250101)
    ls = np.stack([galaxy(rng, 4, 100, 2.0, 0.02) for _ in range(2)])
    ls[0, :, 8:13, 6:11] += 4.0  # a feature near the top-left corner (rows 8-12, cols 6-10)
    hsc = np.stack([galaxy(rng, 5, 100, 120.0, 1.0) for _ in range(1)])
    codec = ImageCodec(quantizer_levels=[7, 5, 5, 5, 5], hidden_dims=16, num_consecutive=1).eval()
    with torch.no_grad():
        ls_out = pre_encoder(codec, ls, LS_BANDS, LegacySurveyImage)
        hsc_out = pre_encoder(codec, hsc, HSC_BANDS, HSCImage)

    wave = (3600 + 0.8 * np.arange(7781)).astype(np.float32)
    flux = (rng.normal(0, 0.3, (2, 7781)) + np.linspace(1, 3, 7781)).astype(np.float32)
    ivar = rng.uniform(5, 50, (2, 7781)).astype(np.float32)
    mask = np.zeros((2, 7781), bool)
    mask[0, 1000:1100] = True
    ivar[mask] = 0.0
    sp = DESISpectrum(
        flux=torch.from_numpy(flux),
        ivar=torch.from_numpy(ivar),
        mask=torch.from_numpy(mask),
        wavelength=torch.from_numpy(np.broadcast_to(wave, flux.shape).copy()),
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        ls_flux=ls,
        ls_pixel_scale=np.float32(0.262),
        ls_expected=ls_out,
        hsc_flux_hsc_units=hsc,
        hsc_pixel_scale=np.float32(0.168),
        hsc_expected=hsc_out,
        spec_flux=sp.flux.numpy(),
        spec_ivar=sp.ivar.numpy(),
        spec_mask=sp.mask.numpy(),
        spec_wavelength=sp.wavelength.numpy()[0],
        upstream=np.array(f"polymathic-aion=={version('polymathic-aion')} torch=={torch.__version__}"),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
