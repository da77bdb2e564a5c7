"""The eight labelled anomaly classes: rates, exact-count placement and the injections themselves.

Every class has a ``strength`` (default 1.0) that scales its visibility so difficulty can be swept:

==========  =============================================================  ===========
class       injection (strength s; "lu" = log-uniform, hard to easy)        modality
==========  =============================================================  ===========
lens        SIS lens (theta_E 0.6-1.5") of a compact blue source with       image (+spec)
            s x lu 4-50 % of the host's VIS flux (unlensed); the source's
            [OII] at z_s = z_l + 0.3-0.9 in the fibre spectrum
merger      companion Sersic with s x lu 10-60 % of the flux at 0.8-2" plus image
            a curved tidal tail of 0.2 x the companion's share
agn         central point source, f_lambda ~ lambda^-1.5 + broad lines     image+spectrum
            (FWHM 2500-8000 km/s); amplitude s x f/(1-f), f 0.05-0.85;
            only the point source gets the point-source fibre fraction
eelg        [OIII]5007 rest EW s x lu 50-1000 A with Hb, Ha, [OII] scaled,  spectrum (+colours)
            added to the galaxy's own lines
sat_trail   straight streak across VIS only, s x lu 0.5-10 sigma per pixel  image
cosmic_ray  2-5 short unconvolved VIS tracks of s x lu 4-60 sigma           image
mismatch    spectrum of a hidden donor (|dz|/(1+z) >= s x 0.05 preferred);  joint only
            none at s = 0
dead_arm    a DESI camera arm (b, r or z): from its blue end, min(s, 1) x   spectrum
            U(0.1, 1) of its pixels get flux 0, ivar 0, mask True
==========  =============================================================  ===========

Every object (anomalies too) has field neighbours and stars (:func:`field_sources`) and ordinary masked
spectrum pixels (:func:`bad_pixel_mask`), from their own random streams; at s = 0 every class is its
normal object exactly.
"""

from __future__ import annotations

import numpy as np

from fmb.data.canonical import NORMAL_CLASS
from fmb.datasets.synthetic import images, survey

ANOMALY_CLASSES: tuple[str, ...] = ("lens", "merger", "agn", "eelg", "sat_trail", "cosmic_ray", "mismatch", "dead_arm")
#: classes that are instrument or data-reduction artefacts, not science (``Dataset.artefact_classes``):
#: counted by the artefact fraction of the top-k and labelled "artefact" by the simulated expert of ``fmb review``
ARTEFACT_CLASSES: tuple[str, ...] = ("sat_trail", "cosmic_ray", "dead_arm")
#: class code 0 is "normal"; code k >= 1 is ANOMALY_CLASSES[k - 1]
CLASS_NAMES: tuple[str, ...] = (NORMAL_CLASS, *ANOMALY_CLASSES)
MODALITY: dict[str, str] = {
    "lens": "image (+ spectrum)",
    "merger": "image",
    "agn": "image + spectrum",
    "eelg": "spectrum (+ colours)",
    "sat_trail": "image",
    "cosmic_ray": "image",
    "mismatch": "joint only",
    "dead_arm": "spectrum",
}
DEFAULT_TOTAL_RATE = 0.05
#: candidate donor spectra generated per mismatched object
MISMATCH_CANDIDATES = 6


def class_counts(size: int, rates: dict[str, float]) -> dict[str, int]:
    """Exact number of objects per class (largest-remainder rounding).

    The total is ``floor(sum(rates) * size + 0.5)``; each class gets ``floor(rate * size)`` and the
    remaining objects go to the classes with the largest fractional parts (ties in class order).
    """
    quota = np.array([rates.get(c, 0.0) * size for c in ANOMALY_CLASSES])
    counts = np.floor(quota + 1e-9).astype(np.int64)
    total = int(np.floor(quota.sum() + 0.5 + 1e-9))
    extra = total - int(counts.sum())
    if extra > 0:
        order = sorted(range(quota.size), key=lambda i: (-(quota[i] - counts[i]), i))
        counts[order[:extra]] += 1
    return dict(zip(ANOMALY_CLASSES, counts.tolist()))


def plan_classes(size: int, counts: dict[str, int], seed: int) -> np.ndarray:
    """Class codes [size] (int8, 0 = normal): the anomalies sit at seeded random positions."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    codes = np.zeros(size, np.int8)
    labels = np.repeat(np.arange(1, len(CLASS_NAMES), dtype=np.int8), [counts[c] for c in ANOMALY_CLASSES])
    codes[rng.permutation(size)[: labels.size]] = labels
    return codes


def loguniform(rng: np.random.Generator, lo: float, hi: float, size=None):
    """Log-uniform draws in [lo, hi]: strengths spread evenly from hard (lo) to easy (hi) per decade."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


# ----------------------------------------------------------------- what every object has
#: field sources per stamp (Poisson means) and their VIS magnitude ranges
NEIGHBOUR_MEAN, NEIGHBOUR_MAG = 1.0, (19.0, 25.5)
STAR_MEAN, STAR_MAG = 0.25, (17.0, 24.0)
#: no field source within this radius of the target (arcsec): the target is the central object
FIELD_MIN_RADIUS = 1.2
#: ordinary masked spectrum pixels: 1 + Poisson(3) short runs (log-normal length, median 3 px) per spectrum;
#: with probability LONG_RUN_PROB one long run of 50-1500 px (a bad CCD region or amplifier)
SHORT_RUNS_MEAN, LONG_RUN_PROB, LONG_RUN_PX = 3.0, 0.04, (50, 1500)


def field_sources(n: int, mg_gal: np.ndarray, stamp: int, rng: np.random.Generator) -> list[list[dict]]:
    """Neighbouring galaxies and stars for ``n`` stamps: per stamp Poisson(1.0) galaxies (VIS 19-25.5 mag,
    p(m) ~ 10^(0.3 m) as faint galaxy counts rise, exponential discs r_e 0.1-0.5", colours of a random
    survey galaxy ``mg_gal`` [n, 4]) and Poisson(0.25) stars (VIS 17-24, NIR/VIS colours 0.5-3), placed
    uniformly on the stamp at more than 1.2" (small stamps: 0.8 x half the stamp) from the
    centre. Every object gets them (anomalies too),
    from their own random stream, so they never depend on the class or the strength."""
    half = 0.5 * stamp * survey.PIXEL_SCALE
    r_min = min(FIELD_MIN_RADIUS, 0.8 * half)  # small stamps (16 px = 1.6") have no room beyond 1.2"
    out: list[list[dict]] = []
    colours = mg_gal / np.maximum(mg_gal[:, :1], 1e-12)
    for _ in range(n):
        srcs: list[dict] = []
        for kind, mean, (m0, m1) in (("galaxy", NEIGHBOUR_MEAN, NEIGHBOUR_MAG), ("star", STAR_MEAN, STAR_MAG)):
            for _k in range(int(rng.poisson(mean))):
                u = rng.uniform()
                if kind == "galaxy":  # inverse CDF of p(m) ~ 10^(0.3 m) on [m0, m1]
                    a, b = 10 ** (0.3 * m0), 10 ** (0.3 * m1)
                    mag = np.log10(a + u * (b - a)) / 0.3
                    col = colours[int(rng.integers(0, n))]
                    shape = {
                        "re": float(loguniform(rng, 0.1, 0.5)),
                        "q": float(rng.uniform(0.3, 1.0)),
                        "pa": float(rng.uniform(0.0, np.pi)),
                    }
                else:
                    mag = m0 + u * (m1 - m0)
                    y_ = loguniform(rng, 0.5, 3.0)
                    j_ = y_ * rng.uniform(0.9, 1.3)
                    col = np.array([1.0, y_, j_, j_ * rng.uniform(0.8, 1.3)])
                    shape = {}
                while True:
                    px, py = rng.uniform(-half, half, 2)
                    if px * px + py * py > r_min**2:
                        break
                flux = 10 ** ((22.5 - mag) / 2.5) * np.asarray(col, float)
                srcs.append({"kind": kind, "x": float(px), "y": float(py), "flux": flux, **shape})
        out.append(srcs)
    return out


def field_map(x: np.ndarray, y: np.ndarray, src: dict) -> np.ndarray:
    """Pre-PSF map [4, n, n] of one field source from :func:`field_sources` on the oversampled grid."""
    flux = np.asarray(src["flux"], np.float32)
    if src["kind"] == "star":
        m = np.zeros(x.shape, np.float32)
        step = float(x[0, 1] - x[0, 0])
        j = int(np.clip(np.round((src["x"] - x[0, 0]) / step), 0, x.shape[1] - 1))
        i = int(np.clip(np.round((src["y"] - y[0, 0]) / step), 0, x.shape[0] - 1))
        m[i, j] = 1.0
    else:
        m = images.sersic(
            x,
            y,
            np.array([src["re"]]),
            np.array([1.0]),
            np.array([src["q"]]),
            np.array([src["pa"]]),
            np.array([src["x"]]),
            np.array([src["y"]]),
        )[0]
    return flux[:, None, None] * m[None]


def bad_pixel_mask(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Ordinary masked pixels [n, length] (bool) of every spectrum: 1 + Poisson(3) runs of log-normal length
    (median 3 px, sigma_ln 1, at most 200 px: cosmic-ray residuals, bad columns) and, with probability 0.04,
    one run of 50-1500 px (a bad CCD region), at uniform positions. Every spectrum has at least one
    masked pixel, as DESI coadds do, so "any masked pixel" says nothing about the class."""
    mask = np.zeros((n, length), bool)
    for i in range(n):
        runs = 1 + int(rng.poisson(SHORT_RUNS_MEAN))
        lens_ = np.clip(np.ceil(rng.lognormal(np.log(3.0), 1.0, runs)), 1, 200).astype(int)
        if rng.uniform() < LONG_RUN_PROB:
            lens_ = np.append(lens_, int(rng.integers(LONG_RUN_PX[0], LONG_RUN_PX[1] + 1)))
        for ln in lens_:
            s0 = int(rng.integers(0, length - ln + 1))
            mask[i, s0 : s0 + ln] = True
    return mask


# ----------------------------------------------------------------- spectrum-side injections
def eelg_lines(
    line_flux: np.ndarray,
    z: np.ndarray,
    cont: np.ndarray,
    rng: np.random.Generator,
    strength: float,
    line_names: tuple[str, ...],
) -> np.ndarray:
    """Line fluxes [n, K] of EELGs: extreme [OIII]5007 (rest EW s x log-uniform 50-1000 A) with [OIII]4959
    (/2.98), Hb (/6), Ha (2.86 Hb) and [OII] **added** to the galaxy's own lines (``line_flux``), given
    their DESI-grid continua [n, L]; at s = 0 the lines are the galaxy's own."""
    n = z.size
    out = line_flux.copy()
    ew = strength * loguniform(rng, 50.0, 1000.0, n)
    lo = 5008.24 * (1.0 + z)
    ci = np.clip(np.searchsorted(survey.SPEC_WAVE, lo), 0, survey.SPEC_WAVE.size - 1)
    c_at = np.where(lo < survey.SPEC_WAVE[-1], cont[np.arange(n), ci], np.median(cont, axis=1))
    f5007 = ew * (1.0 + z) * np.maximum(c_at, 0.02)
    k = {name: i for i, name in enumerate(line_names)}
    out[:, k["OIII_5007"]] += f5007
    out[:, k["OIII_4959"]] += f5007 / 2.98
    out[:, k["Hb"]] += f5007 / 6.0
    out[:, k["Ha"]] += f5007 / 6.0 * 2.86
    out[:, k["OII_3726"]] += f5007 / 12.0
    out[:, k["OII_3729"]] += f5007 / 10.0
    return out


def agn_params(n: int, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """AGN amplitude factor (x the host's 6000-9000 A median flux): s x f/(1-f), f uniform 0.05-0.85 (from a
    barely visible nucleus to a quasar-dominated one), and broad-line FWHM (km/s)."""
    frac = rng.uniform(0.05, 0.85, n)
    fwhm = rng.uniform(2500.0, 8000.0, n)
    return strength * frac / (1.0 - frac), fwhm


def dead_arm(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float
) -> tuple[int, int]:
    """Kill (part of) one camera arm of a single spectrum in place: from the arm's blue end, a fraction
    min(s, 1) x uniform(0.1, 1) of its pixels (a partly or wholly dead camera); returns the dead pixel
    range [lo, hi) (empty at s = 0)."""
    lo_w, hi_w = survey.ARMS[int(rng.integers(0, len(survey.ARMS)))]
    frac = rng.uniform(0.1, 1.0)
    idx = np.flatnonzero((survey.SPEC_WAVE >= lo_w) & (survey.SPEC_WAVE < hi_w))
    lo = int(idx[0])
    hi = lo + int(round(min(strength, 1.0) * frac * idx.size))
    flux[lo:hi] = 0.0
    ivar[lo:hi] = 0.0
    mask[lo:hi] = True
    return lo, hi


def choose_donor(z: float, donor_z: np.ndarray, strength: float) -> int:
    """Index of the first candidate donor with |dz|/(1+z) >= 0.05 s, else the most distant one."""
    dz = np.abs(donor_z - z) / (1.0 + z)
    ok = np.flatnonzero(dz >= 0.05 * strength)
    return int(ok[0]) if ok.size else int(np.argmax(dz))


# ----------------------------------------------------------------- image-side injections
def lens_source(
    x: np.ndarray, y: np.ndarray, host_vis: float, rng: np.random.Generator, strength: float
) -> tuple[np.ndarray, float]:
    """Pre-PSF map [4, n, n] of a compact blue source behind an SIS lens at the origin, and its lensed
    VIS flux (nanomaggies)."""
    theta_e = rng.uniform(0.6, 1.5)
    bx, by = rng.uniform(-0.35, 0.35, 2) * theta_e
    r = np.sqrt(x**2 + y**2) + 1e-6
    sx, sy = x - theta_e * x / r - bx, y - theta_e * y / r - by
    width = 0.08
    src = np.exp(-1.68 * np.sqrt((sx**2 + sy**2) / (2 * width**2)))
    unlensed = np.exp(-1.68 * np.sqrt(((x - bx) ** 2 + (y - by) ** 2) / (2 * width**2))).sum()
    colour = np.array([1.0, 0.8, 0.7, 0.6]) * strength * loguniform(rng, 0.04, 0.5) * host_vis
    amap = colour[:, None, None] * (src / unlensed)[None]
    return amap, float(amap[0].sum())


def lens_source_lines(
    vis_flux_nmgy: np.ndarray, z_lens: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Source redshift and fibre [OII]3726,3729 fluxes [n, 2] (1e-17 erg/s/cm2) of lensed sources:
    rest EW 20-60 A on a flat-f_nu continuum, 30 % of the arcs' light in the fibre."""
    n = z_lens.size
    z_s = np.minimum(z_lens + rng.uniform(0.3, 0.9, n), 1.55)
    lam = 3728.5 * (1.0 + z_s)
    f_lambda = vis_flux_nmgy * 3.631e-29 * 2.99792458e18 / lam**2 * 1e17
    total = rng.uniform(20.0, 60.0, n) * (1.0 + z_s) * f_lambda * 0.3
    return z_s, np.stack([0.45 * total, 0.55 * total], axis=1)


#: companion light / host light per band (log-uniform at s = 1): 1:10 (the minor-merger limit) to 0.6
MERGER_FLUX_RATIO = (0.10, 0.60)


def merger_map(
    x: np.ndarray, y: np.ndarray, re_disk: float, flux: np.ndarray, rng: np.random.Generator, strength: float
) -> np.ndarray:
    """Pre-PSF map [4, n, n] of a companion (s x log-uniform 10-60 % of ``flux`` per band) and a tidal tail
    (0.2 x the companion's share). The lower bound is the usual minor-merger limit, a 1:10 mass (light) ratio
    (Lotz et al. 2011, ApJ 742, 103: major 1:1-1:4, minor 1:4-1:10): fainter satellites are not counted as
    mergers, and at 5 % of the host's light a companion is indistinguishable from a chance projection
    (docs/datasets/synthetic.md)."""
    ang = rng.uniform(0.0, 2.0 * np.pi)
    d = rng.uniform(0.8, 2.0)
    comp = images.sersic(
        x,
        y,
        np.array([0.7 * re_disk]),
        np.array([1.5]),
        np.array([0.7]),
        np.array([ang]),
        np.array([d * np.cos(ang)]),
        np.array([d * np.sin(ang)]),
    )[0]
    t = np.linspace(0.0, 1.0, 40)
    rr, ph = 0.5 + 2.0 * t, ang + np.pi + 2.2 * t
    tail = np.zeros_like(x)
    for xx, yy in zip(rr * np.cos(ph), rr * np.sin(ph)):
        tail += np.exp(-((x - xx) ** 2 + (y - yy) ** 2) / (2 * 0.15**2))
    tail /= tail.sum()
    f_comp = strength * loguniform(rng, MERGER_FLUX_RATIO[0], MERGER_FLUX_RATIO[1])
    return (flux * f_comp)[:, None, None] * comp[None] + (flux * 0.2 * f_comp)[:, None, None] * tail[None]


def satellite_trail(vis: np.ndarray, rng: np.random.Generator, strength: float) -> dict[str, float]:
    """Add a straight streak (Gaussian profile, sigma 0.8 px) to a VIS image in place."""
    h, w = vis.shape
    yy, xx = np.mgrid[:h, :w]
    theta = rng.uniform(0.0, np.pi)
    offset = rng.uniform(-0.31, 0.31) * min(h, w)
    amp = strength * loguniform(rng, 0.5, 10.0) * survey.PIX_SIGMA_NMGY[0]
    d = (xx - w / 2) * np.sin(theta) - (yy - h / 2) * np.cos(theta) - offset
    vis += (amp * np.exp(-0.5 * (d / 0.8) ** 2)).astype(vis.dtype)
    return {"theta": float(theta), "offset": float(offset), "amplitude": float(amp)}


def cosmic_rays(vis: np.ndarray, rng: np.random.Generator, strength: float) -> int:
    """Add 2-5 short unconvolved tracks (1-4 px, s x log-uniform 4-60 sigma per pixel, x 0.7-1 per pixel) to a
    VIS image in place; returns the number of tracks."""
    h, w = vis.shape
    ntrack = int(rng.integers(2, 6))
    peak = loguniform(rng, 4.0, 60.0)
    for _ in range(ntrack):
        x, y = rng.integers(2, w - 2), rng.integers(2, h - 2)
        length = int(rng.integers(1, 5))
        dx, dy = rng.integers(-1, 2, 2)
        for step in range(length):
            yi, xi = int(np.clip(y + step * dy, 0, h - 1)), int(np.clip(x + step * dx, 0, w - 1))
            vis[yi, xi] += strength * peak * rng.uniform(0.7, 1.0) * survey.PIX_SIGMA_NMGY[0]
    return ntrack
