"""Generation of one chunk of the synthetic survey, and its conversion to a canonical RecordBatch.

Each chunk is generated from its own seed, ``SeedSequence(seed, spawn_key=(1, chunk_index))``, split
into independent streams per stage, so chunks can be made in any order and memory stays bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.datasets.synthetic import anomalies as A
from fmb.datasets.synthetic import images, sed, survey
from fmb.datasets.synthetic.population import Morphology, draw_morphology, draw_selected, fibre_fraction

#: bump whenever the generated data change for the same options (it enters the cache fingerprint)
GENERATOR_VERSION = "fmb-synthetic-4"  # 3: neighbour colours drawn from the survey (2 reused this string);
# 4: merger companions 10-60 % of the host (was 5-60 %; the 1:10 minor-merger limit)
#: fraction of a point source's light in the 1.5" fibre in 1.1" seeing (fibre_fraction of r_e -> 0)
POINT_FIBRE_FRACTION = float(fibre_fraction(np.array([0.0]))[0])
#: objects rendered per FFT batch
RENDER_BATCH = 16
_STAGES = ("population", "lines", "morphology", "anomalies", "image_noise", "spectrum_noise", "field", "mask")


@dataclass
class ChunkResult:
    """One generated chunk; the ``spec_*``/``donor``/``details`` fields are truth kept for tests."""

    object_id: np.ndarray
    anomaly_class: np.ndarray  # str [n]
    image: np.ndarray  # float32 [n, 4, S, S] nanomaggies
    rgb: np.ndarray  # uint8 [n, 3, S, S]
    flux: np.ndarray  # float32 [n, L]
    ivar: np.ndarray  # float32 [n, L]
    mask: np.ndarray  # bool [n, L]
    redshift: np.ndarray  # the image object's redshift
    log_mstar: np.ndarray
    log_sfr: np.ndarray
    spec_redshift: np.ndarray  # redshift of the galaxy whose spectrum is shown (differs for mismatch)
    spec_model: np.ndarray  # noiseless model of the spectrum shown [n, L]
    donor: np.ndarray  # index (into the chunk's hidden donors) for mismatch rows, else -1
    details: dict[int, dict] = field(default_factory=dict)  # per-row injection parameters


def chunk_rngs(seed: int, chunk_index: int) -> dict[str, np.random.Generator]:
    """Independent generators per stage for one chunk."""
    children = np.random.SeedSequence(seed, spawn_key=(1, chunk_index)).spawn(len(_STAGES))
    return {name: np.random.default_rng(s) for name, s in zip(_STAGES, children)}


def generate_chunk(
    seed: int,
    chunk_index: int,
    codes: np.ndarray,
    first_id: int,
    stamp: int = 64,
    strengths: dict[str, float] | None = None,
) -> ChunkResult:
    """Generate ``codes.size`` objects whose anomaly classes are ``CLASS_NAMES[codes]``."""
    strengths = {c: 1.0 for c in A.ANOMALY_CLASSES} | dict(strengths or {})
    rng = chunk_rngs(seed, chunk_index)
    cls = np.asarray(A.CLASS_NAMES, dtype=object)[np.asarray(codes, np.int64)]
    n = cls.size
    # donors are drawn whatever the strength (so no other row depends on it); at strength 0 none is shown
    n_donor = A.MISMATCH_CANDIDATES * int((cls == "mismatch").sum())
    ntot = n + n_donor
    kind = np.concatenate([cls, np.full(n_donor, "donor", dtype=object)])
    details: dict[int, dict] = {}

    # --- population (image objects first, then hidden mismatch donors) ---
    # lens hosts are drawn like every other galaxy (no forced red host): at strength 0 a lens row is a normal one
    pop = draw_selected(np.zeros(ntot, bool), rng["population"])
    z = pop.z
    line_flux = sed.nebular_line_fluxes(z, pop.logm, pop.sfr, rng["lines"])
    line_flux[pop.is_red] *= 0.05
    sig_v = rng["lines"].uniform(40.0, 150.0, ntot)
    morph = draw_morphology(pop, rng["morphology"])
    cont_s, _ = sed.continuum(z, pop.coeff, pop.mform, survey.SPEC_WAVE)
    r_an = rng["anomalies"]

    eelg = np.flatnonzero(kind == "eelg")
    if eelg.size:
        line_flux[eelg] = A.eelg_lines(line_flux[eelg], z[eelg], cont_s[eelg], r_an, strengths["eelg"], sed.LINE_NAMES)

    # --- SEDs and photometry of the image objects ---
    sed_p, old_p = sed.continuum(z[:n], pop.coeff[:n], pop.mform[:n], survey.PHOT_WAVE, with_old=True)
    # neighbours borrow line-free continuum colours, so they never depend on any row's class or strength
    field_objs = A.field_sources(n, sed.nanomaggies(sed_p, survey.PHOT_WAVE), stamp, rng["field"])
    sed.add_lines(sed_p, survey.PHOT_WAVE, z[:n], line_flux[:n], sig_v[:n], sed.LINE_CENTERS)
    agn = np.flatnonzero(kind == "agn")
    mg_agn = np.zeros((n, 4))
    agn_amp = np.zeros(0)
    agn_fwhm = np.zeros(0)
    if agn.size:
        factor, agn_fwhm = A.agn_params(agn.size, r_an, strengths["agn"])
        red_band = (survey.PHOT_WAVE > 6000.0) & (survey.PHOT_WAVE < 9000.0)
        agn_amp = factor * np.median(sed_p[agn][:, red_band], axis=1)
        mg_agn[agn] = sed.nanomaggies(sed.agn_spectrum(survey.PHOT_WAVE, z[agn], agn_amp, agn_fwhm), survey.PHOT_WAVE)
    mg_gal = sed.nanomaggies(sed_p, survey.PHOT_WAVE)
    mg_old = sed.nanomaggies(old_p, survey.PHOT_WAVE)
    del sed_p, old_p

    # --- spectrum models (all objects, donors included) ---
    spec = cont_s
    sed.add_lines(spec, survey.SPEC_WAVE, z, line_flux, sig_v, sed.LINE_CENTERS)
    # the host's light enters the fibre with its own fraction; only the AGN point source with a point's
    spec *= fibre_fraction(morph.re)[:, None]
    if agn.size:
        spec[agn] += POINT_FIBRE_FRACTION * sed.agn_spectrum(survey.SPEC_WAVE, z[agn], agn_amp, agn_fwhm)

    # --- images ---
    img, lens_vis = _render_images(kind[:n], morph, mg_gal, mg_old, mg_agn, stamp, r_an, strengths, field_objs)
    img += (
        rng["image_noise"].standard_normal(img.shape, dtype=np.float32)
        * survey.PIX_SIGMA_NMGY.astype(np.float32)[None, :, None, None]
    )
    for i in np.flatnonzero(kind[:n] == "sat_trail"):
        details[int(i)] = A.satellite_trail(img[i, 0], r_an, strengths["sat_trail"])
    for i in np.flatnonzero(kind[:n] == "cosmic_ray"):
        details[int(i)] = {"tracks": A.cosmic_rays(img[i, 0], r_an, strengths["cosmic_ray"])}

    # --- lensed-source [OII] in the lens spectrum (the two-redshift signature) ---
    lenses = np.array(sorted(lens_vis), dtype=np.int64)
    if lenses.size:
        z_s, oii = A.lens_source_lines(np.array([lens_vis[i] for i in lenses]), z[lenses], r_an)
        extra = np.zeros((lenses.size, spec.shape[1]))
        sed.add_lines(
            extra,
            survey.SPEC_WAVE,
            z_s,
            oii,
            np.full(lenses.size, 60.0),
            np.array([sed.NEBULAR_LINES["OII_3726"], sed.NEBULAR_LINES["OII_3729"]]),
        )
        spec[lenses] += extra
        for k, i in enumerate(lenses):
            details[int(i)] = {"z_source": float(z_s[k]), "source_vis_nmgy": lens_vis[int(i)]}

    # --- spectral noise ---
    r_sn = rng["spectrum_noise"]
    sigma = (
        r_sn.lognormal(np.log(survey.SPEC_SIGMA_MEDIAN), survey.SPEC_SIGMA_DEX, ntot)[:, None]
        * survey.noise_shape()[None, :]
    )
    flux = (spec + r_sn.standard_normal(spec.shape) * sigma).astype(np.float32)
    ivar = (1.0 / sigma**2).astype(np.float32)
    del sigma
    mask = A.bad_pixel_mask(ntot, flux.shape[1], rng["mask"])  # every spectrum's ordinary masked pixels
    flux[mask] = 0.0
    ivar[mask] = 0.0
    for i in np.flatnonzero(kind[:n] == "dead_arm"):
        lo, hi = A.dead_arm(flux[i], ivar[i], mask[i], r_an, strengths["dead_arm"])
        details[int(i)] = {"pixels": (lo, hi)}

    # --- cross-modal mismatch: show a hidden donor's spectrum ---
    spec_z = z.copy()
    donor = np.full(n, -1, np.int64)
    for k, i in enumerate(np.flatnonzero(kind[:n] == "mismatch") if strengths["mismatch"] > 0 else ()):
        cand = n + A.MISMATCH_CANDIDATES * k + np.arange(A.MISMATCH_CANDIDATES)
        d = int(cand[A.choose_donor(z[i], z[cand], strengths["mismatch"])])
        flux[i], ivar[i], mask[i], spec[i], spec_z[i] = flux[d], ivar[d], mask[d], spec[d], z[d]
        donor[i] = d - n
        details[int(i)] = {"donor_redshift": float(z[d])}

    return ChunkResult(
        object_id=np.arange(first_id, first_id + n, dtype=np.int64),
        anomaly_class=cls.astype(str),
        image=img,
        rgb=images.rgb_composite(img),
        flux=flux[:n],
        ivar=ivar[:n],
        mask=mask[:n],
        redshift=z[:n].astype(np.float32),
        log_mstar=pop.logm[:n].astype(np.float32),
        log_sfr=pop.log_sfr[:n].astype(np.float32),
        spec_redshift=spec_z[:n],
        spec_model=spec[:n],
        donor=donor,
        details=details,
    )


def _render_images(
    kind: np.ndarray,
    morph: Morphology,
    mg_gal: np.ndarray,
    mg_old: np.ndarray,
    mg_agn: np.ndarray,
    stamp: int,
    r_an: np.random.Generator,
    strengths: dict[str, float],
    field_objs: list[list[dict]],
) -> tuple[np.ndarray, dict[int, float]]:
    """Noiseless PSF-convolved images [n, 4, S, S] of bulge + disk galaxies with their field neighbours
    and stars (``field_objs``, see :func:`anomalies.field_sources`) and the pre-PSF injections (AGN point
    source, lensed arcs, merger companion and tail), and the lensed VIS flux per lens row."""
    n = kind.size
    x, y = images.model_grid(stamp)
    os_ = survey.OVERSAMPLE
    img = np.empty((n, 4, stamp, stamp), np.float32)
    lens_vis: dict[int, float] = {}
    for s0 in range(0, n, RENDER_BATCH):
        sl = np.arange(s0, min(n, s0 + RENDER_BATCH))
        bul = images.sersic(
            x, y, morph.re_bulge[sl], morph.n_bulge[sl], np.sqrt(morph.q[sl]), morph.pa[sl], morph.x0[sl], morph.y0[sl]
        )
        dsk = images.sersic(
            x, y, morph.re_disk[sl], np.ones(sl.size), morph.q[sl], morph.pa[sl], morph.x0[sl], morph.y0[sl]
        )
        fgal = mg_gal[sl]
        bt = np.clip(mg_old[sl] / np.maximum(fgal, 1e-9), 0.02, 0.98)
        pre = (fgal * bt).astype(np.float32)[:, :, None, None] * bul[:, None] + (fgal * (1 - bt)).astype(np.float32)[
            :, :, None, None
        ] * dsk[:, None]
        del bul, dsk
        for j, i in enumerate(sl):
            for src in field_objs[i]:
                pre[j] += A.field_map(x, y, src)
            if kind[i] == "agn":
                cx = stamp * os_ // 2 + int(round(morph.x0[i] / (survey.PIXEL_SCALE / os_)))
                cy = stamp * os_ // 2 + int(round(morph.y0[i] / (survey.PIXEL_SCALE / os_)))
                pre[j, :, cy, cx] += mg_agn[i]
            elif kind[i] == "lens":
                amap, lens_vis[int(i)] = A.lens_source(x, y, fgal[j, 0], r_an, strengths["lens"])
                pre[j] += amap
            elif kind[i] == "merger":
                pre[j] += A.merger_map(x, y, morph.re_disk[i], fgal[j], r_an, strengths["merger"])
        img[sl] = images.render(pre, stamp)
    return img, lens_vis


def make_schema(stamp: int, options: dict | None = None) -> pa.Schema:
    """The canonical schema of the synthetic survey (options recorded in the schema metadata)."""
    fields = [
        pa.field(C.OBJECT_ID, pa.int64()),
        C.image_field(list(survey.BANDS), stamp, stamp, survey.PIXEL_SCALE),
        C.rgb_field(stamp, stamp),
        *C.spectrum_fields(),
        *C.truth_fields(),
    ]
    meta = {"fmb.dataset": "synthetic", "fmb.synthetic.version": GENERATOR_VERSION}
    if options is not None:
        meta["fmb.synthetic.options"] = json.dumps(options, sort_keys=True)
    return pa.schema(fields, metadata=meta)


def _fixed(values: np.ndarray, typ: pa.DataType) -> pa.FixedSizeListArray:
    n = values.shape[0]
    flat = np.ascontiguousarray(values).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=typ), flat.size // max(n, 1))


def to_record_batch(res: ChunkResult, schema: pa.Schema) -> pa.RecordBatch:
    """The canonical RecordBatch of a generated chunk."""
    cols = [
        pa.array(res.object_id, pa.int64()),
        _fixed(res.image, pa.float32()),
        _fixed(res.rgb, pa.uint8()),
        _fixed(res.flux, pa.float32()),
        _fixed(res.ivar, pa.float32()),
        _fixed(res.mask, pa.bool_()),
        pa.array(res.anomaly_class != C.NORMAL_CLASS, pa.bool_()),
        pa.array(res.anomaly_class, pa.string()),
        pa.array(res.redshift, pa.float32()),
        pa.array(res.log_mstar, pa.float32()),
        pa.array(res.log_sfr, pa.float32()),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=schema)
