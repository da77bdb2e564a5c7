"""kcorrect NMF spectral templates (Blanton & Roweis 2007), read from the skypy package (BSD-3)."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmb.data.canonical import DataError

KCORRECT_FILE = ("data", "kcorrect", "k_nmf_derived.default.fits")

#: Herbel et al. (2017) Dirichlet parameters (alpha0, alpha1, weights) as used by skypy/slsim
HERBEL_ALPHA: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    "blue": (
        np.array([2.079, 3.524, 1.917, 1.992, 2.536]),
        np.array([2.265, 3.862, 1.921, 1.685, 2.480]),
        np.array([3.47e09, 3.31e06, 2.13e09, 1.64e10, 1.01e09]),
    ),
    "red": (
        np.array([2.461, 2.358, 2.568, 2.268, 2.402]),
        np.array([2.410, 2.340, 2.200, 2.540, 2.464]),
        np.array([3.84e09, 1.57e06, 3.91e08, 4.66e10, 3.03e07]),
    ),
}
#: templates with ~no mass formed in the last 300 Myr: their light forms the "bulge"
OLD_TEMPLATES = np.array([True, False, True, True, False])


@dataclass(frozen=True)
class Templates:
    """Five continuum templates (no nebular lines), flux at 10 pc per 1 Msun formed.

    ``lam`` [L] Angstrom (log-spaced), ``flux`` [5, L] erg/s/cm2/A, ``mremain`` [5] surviving
    mass fraction, ``m300`` [5] mass fraction formed in the last 300 Myr.
    """

    lam: np.ndarray
    flux: np.ndarray
    mremain: np.ndarray
    m300: np.ndarray

    def mix_at(self, coeff: np.ndarray, lam_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Mixtures ``coeff`` [N, 5] of the templates, linearly interpolated at the rest wavelengths
        ``lam_obs / (1 + z)`` -> [N, L] (per 1 Msun formed, at 10 pc)."""
        n = z.size
        if n == 0:
            return np.zeros((0, lam_obs.size))
        mix = coeff @ self.flux  # [N, T]
        dlog = np.log(self.lam[1] / self.lam[0])
        x = (np.log(lam_obs)[None, :] - np.log1p(z)[:, None] - np.log(self.lam[0])) / dlog
        i0 = np.clip(x.astype(np.int64), 0, self.lam.size - 2)
        f = np.clip(x - i0, 0.0, 1.0)
        i0 += (np.arange(n) * self.lam.size)[:, None]
        flat = mix.ravel()
        lo = flat[i0]
        return lo + (flat[i0 + 1] - lo) * f


def kcorrect_path() -> str:
    """Path of skypy's kcorrect template file (raises DataError when skypy is missing)."""
    # find_spec locates the package without importing it (skypy's __init__ prints astropy
    # deprecation warnings on every run)
    spec = importlib.util.find_spec("skypy")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the synthetic dataset needs the 'skypy' package (kcorrect templates)")
    ref = Path(spec.submodule_search_locations[0]).joinpath(*KCORRECT_FILE)
    if not ref.is_file():
        raise DataError(f"kcorrect templates not found in the skypy package: {ref}")
    return str(ref)


@functools.lru_cache(maxsize=1)
def load_templates() -> Templates:
    """Load (once per process) the line-free kcorrect templates: HDU 2 flux, 11 wavelength, 17/19 masses."""
    from astropy.io import fits

    with fits.open(kcorrect_path(), memmap=False) as hdul:
        lam = np.asarray(hdul[11].data, dtype=np.float64)
        flux = np.asarray(hdul[2].data, dtype=np.float64)
        mremain = np.asarray(hdul[17].data, dtype=np.float64)
        m300 = np.asarray(hdul[19].data, dtype=np.float64)
    for a in (lam, flux, mremain, m300):
        a.setflags(write=False)
    return Templates(lam=lam, flux=flux, mremain=mremain, m300=m300)
