"""The normal galaxy population: types, redshifts, masses, SED mixtures, selection and morphology."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from fmb.datasets.synthetic import sed, survey
from fmb.datasets.synthetic.templates import HERBEL_ALPHA, load_templates

RED_FRACTION = 0.35
#: oversampling factor of the candidate draws before the magnitude cut
SELECTION_OVERSAMPLE = 3


@dataclass
class Population:
    """Intrinsic properties of N galaxies (arrays of length N; ``coeff`` is [N, 5])."""

    is_red: np.ndarray
    z: np.ndarray
    logm: np.ndarray
    coeff: np.ndarray
    mform: np.ndarray
    sfr: np.ndarray

    def __len__(self) -> int:
        return int(self.z.size)

    def take(self, idx: np.ndarray) -> Population:
        """The sub-population at indices (or boolean mask) ``idx``."""
        return Population(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Population]) -> Population:
        """Concatenate populations in order."""
        return Population(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Population)})

    @property
    def log_sfr(self) -> np.ndarray:
        """log10 SFR (Msun/yr), floored at 1e-4."""
        return np.log10(np.maximum(self.sfr, 1e-4))


def sample_population(n: int, rng: np.random.Generator, red_only: bool = False) -> Population:
    """Draw ``n`` galaxies before selection.

    Red: z = 0.02 + Gamma(6, 0.08), log M* ~ N(10.95, 0.30); blue: z = 0.02 + Gamma(2.5, 0.22),
    log M* ~ N(10.1, 0.5). SED mixtures are Dirichlet draws with the Herbel+2017 z-dependent alphas;
    the formed mass is set so that the surviving mass equals M*; SFR = mass formed in 300 Myr / 3e8 yr.
    """
    tpl = load_templates()
    is_red = np.ones(n, bool) if red_only else rng.random(n) < RED_FRACTION
    z = np.where(is_red, 0.02 + rng.gamma(6.0, 0.08, n), 0.02 + rng.gamma(2.5, 0.22, n)).clip(0.02, 1.45)
    logm = np.where(is_red, rng.normal(10.95, 0.30, n), rng.normal(10.1, 0.5, n)).clip(8.5, 11.9)
    coeff = np.empty((n, 5))
    for key, sel in (("red", is_red), ("blue", ~is_red)):
        a0, a1, w = HERBEL_ALPHA[key]
        alpha = a0[None] ** (1.0 - z[sel, None]) * a1[None] ** z[sel, None]
        c = rng.gamma(alpha) * w[None]
        coeff[sel] = c / c.sum(1, keepdims=True)
    mform = 10.0**logm / (coeff @ tpl.mremain)
    sfr = 10.0**logm * (coeff @ tpl.m300) / (coeff @ tpl.mremain) / 3e8
    return Population(is_red=is_red, z=z, logm=logm, coeff=coeff, mform=mform, sfr=sfr)


def passes_selection(pop: Population) -> np.ndarray:
    """Boolean mask of galaxies with 16.5 < VIS < 22.5 (continuum photometry on a 16 A grid)."""
    lam = survey.PHOT_WAVE[::4]
    cont, _ = sed.continuum(pop.z, pop.coeff, pop.mform, lam)
    mag = sed.ab_mag(sed.nanomaggies(cont, lam)[:, 0])
    lo, hi = survey.VIS_MAG_LIMITS
    return (mag > lo) & (mag < hi)


def _draw_selected(n: int, rng: np.random.Generator, red_only: bool) -> Population:
    if n == 0:
        return sample_population(0, rng, red_only=red_only)
    parts: list[Population] = []
    have = 0
    while have < n:
        cand = sample_population(max(SELECTION_OVERSAMPLE * (n - have), 16), rng, red_only=red_only)
        kept = cand.take(passes_selection(cand))
        parts.append(kept)
        have += len(kept)
    return Population.concat(parts).take(np.arange(n))


def draw_selected(force_red: np.ndarray, rng: np.random.Generator) -> Population:
    """Exactly ``force_red.size`` selected galaxies in slot order; slots flagged in ``force_red``
    (lens hosts) get red galaxies, the others are drawn from the full population."""
    force_red = np.asarray(force_red, bool)
    n_red = int(force_red.sum())
    free = _draw_selected(force_red.size - n_red, rng, red_only=False)
    red = _draw_selected(n_red, rng, red_only=True)
    order = np.empty(force_red.size, np.int64)
    order[~force_red] = np.arange(len(free))
    order[force_red] = len(free) + np.arange(n_red)
    return Population.concat([free, red]).take(order)


@dataclass
class Morphology:
    """Bulge (Sersic n 3-5) + disk (n=1) shapes, in arcsec and radians."""

    re: np.ndarray  # half-light radius of the galaxy
    q: np.ndarray  # disk axis ratio (bulge uses sqrt(q))
    pa: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    n_bulge: np.ndarray
    re_bulge: np.ndarray
    re_disk: np.ndarray


def draw_morphology(pop: Population, rng: np.random.Generator) -> Morphology:
    """Shen-like size-mass relation (0.15 dex scatter) converted with D_A; beta-distributed axis ratios."""
    n = len(pop)
    re_kpc = np.where(
        pop.is_red, 10.0 ** (0.56 * (pop.logm - 11.0) + 0.65), 10.0 ** (0.22 * (pop.logm - 10.0) + 0.55)
    ) * 10.0 ** rng.normal(0.0, 0.15, n)
    re = np.clip(re_kpc / sed.angular_diameter_kpc(pop.z) * 206264.8, 0.08, 2.5)
    q = np.where(pop.is_red, rng.beta(7.0, 2.0, n), rng.beta(2.5, 1.8, n)).clip(0.15, 1.0)
    pa = rng.uniform(0.0, np.pi, n)
    x0, y0 = rng.normal(0.0, 0.03, (2, n))
    n_bulge = rng.uniform(3.0, 5.0, n)
    re_bulge = np.where(pop.is_red, 0.8 * re, 0.35 * re)
    re_disk = np.where(pop.is_red, 1.6 * re, re)
    return Morphology(re=re, q=q, pa=pa, x0=x0, y0=y0, n_bulge=n_bulge, re_bulge=re_bulge, re_disk=re_disk)


def fibre_fraction(re: np.ndarray) -> np.ndarray:
    """Fraction of a galaxy's light in a 1.5" fibre in 1.1" seeing (Gaussian galaxy of the same r_e)."""
    s2 = (re / 1.177) ** 2 + (survey.FIBRE_SEEING / 2.355) ** 2
    return 1.0 - np.exp(-(survey.FIBRE_RADIUS**2) / (2.0 * s2))
