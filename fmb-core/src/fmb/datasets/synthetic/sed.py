"""Galaxy SED physics: template continua, nebular and broad lines, distances and AB photometry.

All flux densities are in 1e-17 erg/s/cm2/A (the DESI unit); line fluxes in 1e-17 erg/s/cm2.
"""

from __future__ import annotations

import functools

import numpy as np

from fmb.datasets.synthetic import survey
from fmb.datasets.synthetic.templates import OLD_TEMPLATES, load_templates

#: nebular lines, vacuum rest wavelengths (Angstrom)
NEBULAR_LINES: dict[str, float] = {
    "OII_3726": 3727.09,
    "OII_3729": 3729.88,
    "NeIII": 3869.86,
    "Hd": 4102.89,
    "Hg": 4341.69,
    "Hb": 4862.71,
    "OIII_4959": 4960.30,
    "OIII_5007": 5008.24,
    "NII_6548": 6549.86,
    "Ha": 6564.61,
    "NII_6584": 6585.27,
    "SII_6716": 6718.29,
    "SII_6731": 6732.67,
}
LINE_NAMES: tuple[str, ...] = tuple(NEBULAR_LINES)
LINE_CENTERS = np.array([NEBULAR_LINES[k] for k in LINE_NAMES])
#: AGN broad lines: rest wavelength and flux relative to Ly-alpha
BROAD_LINES: dict[str, tuple[float, float]] = {
    "Lya": (1215.67, 1.0),
    "CIV": (1549.06, 0.6),
    "CIII": (1908.73, 0.3),
    "MgII": (2798.75, 0.35),
    "Hg": (4341.69, 0.08),
    "Hb": (4862.71, 0.2),
    "Ha": (6564.61, 0.6),
}
BROAD_CENTERS = np.array([v[0] for v in BROAD_LINES.values()])
BROAD_REL = np.array([v[1] for v in BROAD_LINES.values()])
#: Calzetti-like k(lambda) per line species
_K_DUST = {
    "Ha": 3.33,
    "Hb": 4.6,
    "OIII": 4.46,
    "OII": 5.86,
    "NII": 3.32,
    "SII": 3.21,
    "Hg": 5.12,
    "Hd": 5.39,
    "NeIII": 5.75,
}
_PC_CM = 3.0856775814913673e18


@functools.lru_cache(maxsize=1)
def _distance_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planck18 luminosity (cm) and angular-diameter (kpc) distances tabulated on a fine z grid."""
    import astropy.units as u
    from astropy.cosmology import Planck18

    zgrid = np.linspace(0.0, 2.0, 4001)
    dl = Planck18.luminosity_distance(zgrid).to(u.cm).value
    da = Planck18.angular_diameter_distance(zgrid).to(u.kpc).value
    for a in (zgrid, dl, da):
        a.setflags(write=False)
    return zgrid, dl, da


def luminosity_distance_cm(z: np.ndarray) -> np.ndarray:
    """Luminosity distance in cm (Planck18, interpolated)."""
    zgrid, dl, _ = _distance_table()
    return np.interp(z, zgrid, dl)


def angular_diameter_kpc(z: np.ndarray) -> np.ndarray:
    """Angular-diameter distance in kpc (Planck18, interpolated)."""
    zgrid, _, da = _distance_table()
    return np.interp(z, zgrid, da)


def continuum(
    z: np.ndarray, coeff: np.ndarray, mform: np.ndarray, lam_obs: np.ndarray, with_old: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Observed-frame stellar continuum [N, L]; with ``with_old`` also its old-template ("bulge") part."""
    tpl = load_templates()
    dl10 = (luminosity_distance_cm(z) / (10.0 * _PC_CM)) ** 2
    scale = (mform / dl10 / (1.0 + z) * 1e17)[:, None]
    total = tpl.mix_at(coeff, lam_obs, z) * scale
    old = tpl.mix_at(coeff * OLD_TEMPLATES[None, :], lam_obs, z) * scale if with_old else None
    return total, old


def add_lines(
    flux: np.ndarray, lam_obs: np.ndarray, z: np.ndarray, line_flux: np.ndarray, sig_v: np.ndarray, centers: np.ndarray
) -> None:
    """Add Gaussian lines in place to ``flux`` [N, L] sampled on the uniform grid ``lam_obs``.

    ``line_flux`` [N, K] integrated fluxes, ``sig_v`` [N] velocity dispersions (km/s), ``centers``
    [K] rest wavelengths. The DESI instrumental width is added in quadrature; only a +-6 sigma
    window around each line is evaluated.
    """
    n, npix = flux.shape
    if n == 0:
        return
    l0, dl = lam_obs[0], lam_obs[1] - lam_obs[0]
    rows = np.arange(n)[:, None]
    for k, rest in enumerate(centers):
        lo = rest * (1.0 + z)
        sig = np.sqrt((lo * sig_v / survey.C_KMS) ** 2 + survey.desi_sigma_inst(lo) ** 2)
        if dl > 1.0:
            sig = np.maximum(sig, dl)
        half = int(np.ceil(6.0 * sig.max() / dl)) + 1
        idx = np.rint((lo - l0) / dl).astype(np.int64)[:, None] + np.arange(-half, half + 1)[None, :]
        inside = (idx >= 0) & (idx < npix)
        idxc = np.clip(idx, 0, npix - 1)
        d = (lam_obs[idxc] - lo[:, None]) / sig[:, None]
        val = line_flux[:, k : k + 1] / (np.sqrt(2.0 * np.pi) * sig[:, None]) * np.exp(-0.5 * d * d) * inside
        np.add.at(flux, (np.broadcast_to(rows, idx.shape), idxc), val)


def nebular_line_fluxes(z: np.ndarray, logm: np.ndarray, sfr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Line fluxes [N, K] (LINE_NAMES order) from the SFR (Kennicutt 1998 H-alpha), BPT-like ratios
    ([NII]/Ha rising with mass, [OIII]/Hb on the Kauffmann locus -0.15 dex) and Calzetti-like dust
    with E(B-V) growing with mass."""
    n = z.size
    f_ha = sfr / 7.9e-42 / (4.0 * np.pi * luminosity_distance_cm(z) ** 2) * 1e17
    n2 = np.clip(-1.1 + 0.35 * (logm - 9.0) + rng.normal(0.0, 0.08, n), -1.6, -0.35)
    o3 = 0.61 / (n2 - 0.05) + 1.3 - 0.15 + rng.normal(0.0, 0.1, n)
    ebv = np.clip(0.05 + 0.15 * (logm - 9.0) + rng.normal(0.0, 0.08, n), 0.0, 0.8)

    def att(species: str) -> np.ndarray:
        return 10.0 ** (-0.4 * _K_DUST[species] * ebv)

    hb = f_ha / 2.86
    fl = {
        "Ha": f_ha * att("Ha"),
        "Hb": hb * att("Hb"),
        "Hg": 0.468 * hb * att("Hg"),
        "Hd": 0.259 * hb * att("Hd"),
        "NII_6584": f_ha * 10.0**n2 * att("NII"),
        "OIII_5007": hb * 10.0**o3 * att("OIII"),
        "OII_3726": 0.45 * 3.0 * hb * att("OII"),
        "OII_3729": 0.55 * 3.0 * hb * att("OII"),
        "SII_6716": 0.17 * f_ha * att("SII"),
        "SII_6731": 0.12 * f_ha * att("SII"),
        "NeIII": 0.05 * hb * att("NeIII"),
    }
    fl["OIII_4959"] = fl["OIII_5007"] / 2.98
    fl["NII_6548"] = fl["NII_6584"] / 3.05
    return np.stack([fl[k] for k in LINE_NAMES], axis=1)


def agn_spectrum(lam_obs: np.ndarray, z: np.ndarray, amp: np.ndarray, fwhm_kms: np.ndarray) -> np.ndarray:
    """AGN power law f_lambda = amp (lambda/5000)^-1.5 plus broad lines (FWHM in km/s) [N, L]."""
    out = amp[:, None] * (lam_obs[None, :] / 5000.0) ** (-1.5)
    add_lines(out, lam_obs, z, BROAD_REL[None, :] * amp[:, None] * 150.0, fwhm_kms / 2.355, BROAD_CENTERS)
    return out


def nanomaggies(flux: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """AB nanomaggies [N, 4] in Euclid VIS/Y/J/H of spectra ``flux`` [N, L] (1e-17 units)."""
    if flux.shape[0] == 0:
        return np.zeros((0, len(survey.BANDS)))
    t = survey.euclid_filters().get_ab_maggies(flux * 1e-17, lam)
    return np.stack([np.asarray(t[c], dtype=np.float64) for c in t.colnames], axis=1) * 1e9


def ab_mag(nmgy: np.ndarray) -> np.ndarray:
    """AB magnitude of a flux in nanomaggies."""
    return 22.5 - 2.5 * np.log10(np.maximum(nmgy, 1e-6))
