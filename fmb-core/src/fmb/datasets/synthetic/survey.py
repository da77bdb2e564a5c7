"""Instrument and survey constants of the synthetic Euclid (VIS/Y/J/H) + DESI-like survey.

Numbers follow the FMB research note on synthetic data (section 3): Euclid PSF FWHMs from
surveycodex (ERO medians), white-noise levels set from the Q1/Wide depths, and the DESI
coadd wavelength grid. Shared read-only inputs (filters, noise shape) are cached per process.
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

from fmb.data import canonical as C

BANDS: tuple[str, ...] = ("VIS", "Y", "J", "H")
PIXEL_SCALE = 0.1  #: arcsec per pixel (MER-like common grid)
PSF_FWHM = np.array([0.17, 0.477, 0.486, 0.492])  #: arcsec, Moffat FWHM per band
PSF_BETA = np.array([2.5, 3.0, 3.0, 3.0])  #: Moffat beta per band
#: white noise per pixel (nanomaggies): VIS 10 sigma in 1.3" ~ 25.5 AB; NISP 5 sigma point source ~ 24.0
PIX_SIGMA_NMGY = np.array([0.0006, 0.0070, 0.0070, 0.0070])
OVERSAMPLE = 3  #: image model oversampling factor

#: DESI coadd grid, 3600 + 0.8 i Angstrom (vacuum, observed frame)
SPEC_WAVE = C.DESI_WAVE_START + C.DESI_WAVE_STEP * np.arange(C.DESI_NPIX)
#: grid for synthetic photometry (Angstrom)
PHOT_WAVE = np.arange(2900.0, 21200.0, 4.0)
#: DESI camera (b, r, z) wavelength ranges used by the dead-arm anomaly
ARMS: tuple[tuple[float, float], ...] = ((3600.0, 5800.0), (5760.0, 7620.0), (7520.0, 9825.0))

#: magnitude selection (AB, VIS)
VIS_MAG_LIMITS = (16.5, 22.5)
#: spectral noise: sigma = lognormal(median, dex) x the real-DESI noise shape (1e-17 units)
SPEC_SIGMA_MEDIAN = 0.25
SPEC_SIGMA_DEX = 0.3
#: fibre: 1.5" diameter in 1.1" FWHM seeing
FIBRE_RADIUS = 0.75
FIBRE_SEEING = 1.1

C_KMS = 299792.458


@functools.lru_cache(maxsize=1)
def noise_shape() -> np.ndarray:
    """Relative DESI noise sigma(lambda)/median sigma on the coadd grid (read-only, 7781 values).

    Derived from public DESI EDR spectra (see fmb/datasets/data/NOTICE.md).
    """
    ref = importlib.resources.files("fmb.datasets") / "data" / "desi_noise_shape.npy"
    with ref.open("rb") as fh:
        arr = np.load(fh).astype(np.float64)
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=1)
def euclid_filters():  # -> speclite.filters.FilterSequence
    """The speclite Euclid VIS/Y/J/H response curves."""
    import speclite.filters as sf

    return sf.load_filters("Euclid-VIS", "Euclid-Y", "Euclid-J", "Euclid-H")


def desi_sigma_inst(lam: np.ndarray) -> np.ndarray:
    """DESI instrumental Gaussian sigma (Angstrom), R from 2000 at 3600 A to 5100 at 9824 A."""
    res = np.interp(lam, [3600.0, 5800.0, 7600.0, 9824.0], [2000.0, 3200.0, 4100.0, 5100.0])
    return lam / (2.355 * res)
