"""The strong floor: ``baseline-strong`` features, the ``crossmodal`` detector, the nuisance diagnostic and
the ``mismatch`` refusal without a shared space (small data: a 24-object synthetic survey, toy data)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from fmb.cli import cli
from fmb.data import canonical as C
from fmb.detectors.crossmodal import CrossModalDetector
from fmb.detectors.fusion import FusionDetector
from fmb.detectors.mismatch import MismatchDetector
from fmb.errors import DetectorError, ModelError, UsageError
from fmb.models.baseline_strong import (
    IMAGE_DIM,
    IMAGE_NAMES,
    JOINT_NAMES,
    SPECTRUM_DIM,
    SPECTRUM_NAMES,
    image_features,
    joint_features,
    spectrum_features,
)
from fmb.plugins import registry
from fmb.protocol.nuisance import object_variables, spearman
from fmb.testing.cli import fmb_run
from fmb.testing.conformance import parametrize


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """24 synthetic objects (every class possible), 32 x 32 stamps, as one record batch."""
    import os

    from fmb.datasets.synthetic import ANOMALY_CLASSES, open_dataset

    old = os.environ.get("FMB_HOME")
    os.environ["FMB_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        ds = open_dataset(size=24, chunk_size=24, stamp=32, rates={c: 1 / 12 for c in ANOMALY_CLASSES})
        batch = pa.Table.from_batches(list(ds.iter_batches(100))).combine_chunks().to_batches()[0]
    finally:
        if old is None:
            del os.environ["FMB_HOME"]
        else:
            os.environ["FMB_HOME"] = old
    return batch


@pytest.fixture(scope="module")
def stamp64(tmp_path_factory):
    """One normal synthetic object on the default survey's 64 x 64 stamp, ``[1, 4, 64, 64]`` float64 nmgy."""
    import os

    from fmb.datasets.synthetic import open_dataset

    old = os.environ.get("FMB_HOME")
    os.environ["FMB_HOME"] = str(tmp_path_factory.mktemp("home64"))
    try:
        ds = open_dataset(size=4, chunk_size=4, stamp=64, rates={})
        batch = next(iter(ds.iter_batches(4)))
    finally:
        if old is None:
            del os.environ["FMB_HOME"]
        else:
            os.environ["FMB_HOME"] = old
    return C.column_array(batch, C.IMAGE).astype(np.float64)[:1]


@pytest.fixture(scope="module")
def strong():
    spec = registry().model("baseline-strong")
    return spec, spec.load()(spec)


# ------------------------------------------------------------------ baseline-strong
def test_strong_features_shape_finite_deterministic(survey, strong):
    spec, model = strong
    a = model.embed(survey)
    b = model.embed(survey)
    assert set(a) == {"image", "spectrum", "joint"}
    assert a["image"].shape == (24, IMAGE_DIM) and a["spectrum"].shape == (24, SPECTRUM_DIM)
    assert a["joint"].shape == (24, IMAGE_DIM + SPECTRUM_DIM + len(JOINT_NAMES))
    for out, x in a.items():
        assert x.shape[1] == spec.outputs[out], out  # the registered dimension
        assert x.dtype == np.float32 and np.isfinite(x).all(), out
        np.testing.assert_array_equal(x, b[out])
    extra = joint_features(C.column_array(survey, C.IMAGE), a["spectrum"])
    np.testing.assert_array_equal(a["joint"], np.hstack([a["image"], a["spectrum"], extra]))
    assert (a["image"].std(axis=0) > 0).sum() > IMAGE_DIM // 2  # features vary between objects


def test_strong_features_depend_only_on_the_object(survey, strong):
    _, model = strong
    full = model.embed(survey)
    rows = np.array([17, 3, 3, 9])  # a subset, reordered, with a repeat
    part = model.embed(survey.take(pa.array(rows)))
    for out in full:
        np.testing.assert_array_equal(part[out], full[out][rows], err_msg=out)


def test_strong_features_see_what_they_claim(survey):
    img = C.column_array(survey, C.IMAGE).astype(np.float64)
    base = image_features(img)
    hit = img.copy()
    hit[0, 0, 5, 26] += 50 * img[0, 0].std()  # a one-pixel VIS spike off the galaxy (a cosmic ray)
    f = image_features(hit)
    sharp = IMAGE_NAMES.index("vis_sharpness")  # asinh of sigma units
    assert np.sinh(f[0, sharp]) > np.sinh(base[0, sharp]) + 10
    np.testing.assert_array_equal(f[1:], base[1:])

    flux, ivar = C.column_array(survey, C.FLUX), C.column_array(survey, C.IVAR)
    mask, wave = C.column_array(survey, C.MASK, bool), C.wavelength(survey)
    s0 = spectrum_features(flux, ivar, mask, wave)
    m = mask.copy()
    m[2, 1000:1300] = True  # a dead amplifier-like masked run of 300 pixels
    s1 = spectrum_features(flux, ivar, m, wave)
    run = SPECTRUM_NAMES.index("longest_masked_run")
    assert s1[2, run] == pytest.approx(max(s0[2, run], 300 / flux.shape[1]), rel=1e-6) and s1[2, run] >= 300 / 7781
    np.testing.assert_array_equal(s1[[0, 1, 3]], s0[[0, 1, 3]])
    nothing = spectrum_features(flux[:2], np.zeros_like(ivar[:2]), mask[:2], wave)
    assert np.isnan(nothing).all()  # no usable pixel: a missing modality, not zeros


def test_strong_refuses_bad_input_and_options(strong):
    spec, _ = strong
    with pytest.raises(ModelError, match="at least 16x16"):
        image_features(np.zeros((2, 4, 12, 12), np.float32))
    with pytest.raises(ModelError, match="takes no options"):
        spec.load()(spec, options={"size": "big"})
    with pytest.raises(ModelError, match="no weights"):
        spec.load()(spec, weights="/some/file.pt")


@parametrize("model", "baseline-strong")
def test_strong_model_passes_the_conformance_kit(fmb_check):
    fmb_check()


# ------------------------------------------------------------------ crossmodal
def _paired(n=200, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    z[0], z[1] = [3.0, 0, 0], [-3.0, 0, 0]
    A = z @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(n, 10))
    B = np.tanh(z) @ rng.normal(size=(3, 6)) + 0.05 * rng.normal(size=(n, 6))
    B[[0, 1]] = B[[1, 0]]  # a planted swapped pair: each shows the other's spectrum
    return A, B


@pytest.mark.parametrize("regressor", ["knn", "ridge"])
def test_crossmodal_finds_a_swapped_pair(regressor):
    A, B = _paired()
    det = CrossModalDetector(regressor=regressor, pca=3)
    s = det.fit_score_inputs({"image": A, "spectrum": B}, seed=0)
    assert set(np.argsort(-s)[:2]) == {0, 1}
    assert det.residuals_.shape == (200, 6)
    assert set(det.components_) == {"image_to_spectrum", "spectrum_to_image"}


def test_crossmodal_is_seeded_and_base_detector_scores_residuals():
    A, B = _paired(seed=3)
    x = {"image": A, "spectrum": B}
    s0 = CrossModalDetector().fit_score_inputs(x, seed=0)
    np.testing.assert_array_equal(s0, CrossModalDetector().fit_score_inputs(x, seed=0))
    assert not np.array_equal(s0, CrossModalDetector().fit_score_inputs(x, seed=1))  # the folds differ
    det = CrossModalDetector(base="knn")
    s = det.fit_score_inputs(x, seed=0)
    ref = registry().detector("knn").load()().fit_score(det.residuals_.astype(np.float32), seed=0)
    np.testing.assert_allclose(s, ref)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"regressor": "svr"}, "parameter regressor='svr' must be one of knn, ridge"),
        ({"folds": 1}, "folds=1 must be an integer >= 2"),
        ({"pca": 0}, "pca=0"),
        ({"neighbours": 5}, "unknown parameter(s) neighbours (did you mean 'neighbors'?)"),
        ({"base": "nosuch"}, "detector 'crossmodal': parameter base='nosuch': unknown detector 'nosuch'"),
        ({"base": "fusion"}, "base detector 'fusion' must score one embedding at a time"),
        ({"base": "knn", "base_params": {"n_neighbors": 0}}, "detector 'knn': parameter n_neighbors=0"),
    ],
)
def test_crossmodal_parameters_are_checked(params, message):
    with pytest.raises(UsageError) as err:
        registry().detector("crossmodal").load()(**params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_crossmodal_too_few_objects():
    A, B = _paired(n=30)
    with pytest.raises(DetectorError, match="15 objects are too few for 5-fold"):
        CrossModalDetector(neighbors=15, folds=5).fit_score_inputs({"image": A[:15], "spectrum": B[:15]})


# ------------------------------------------------------------------ nuisance
def test_spearman_matches_scipy_and_hand_value():
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == pytest.approx(0.8)  # 1 - 6*2/60
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    b[:5] = np.nan
    a[7] = np.inf
    ok = np.isfinite(a) & np.isfinite(b)
    assert spearman(a, b) == pytest.approx(spearmanr(a[ok], b[ok]).statistic)
    assert spearman(a, np.ones(50)) is None and spearman(a[:2], b[:2]) is None


def test_nuisance_in_results_json(toy, tmp_path):
    fmb_run(tmp_path, dataset="toy:size=60")
    res = json.loads((tmp_path / "results.json").read_text())
    scores = pq.read_table(tmp_path / "scores.parquet")
    data = registry().dataset("toy").load()(size=60)
    batch = next(data.iter_batches(1000))
    ids = batch.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
    flux = C.column_array(batch, C.IMAGE)[:, 0].astype(np.float64).sum(axis=(1, 2))  # independent: VIS total
    sflux, sivar = C.column_array(batch, C.FLUX), C.column_array(batch, C.IVAR)
    snr = np.median(np.abs(sflux) * np.sqrt(sivar), axis=1)  # toy: no masked pixels
    np.testing.assert_allclose(object_variables(batch)["spectrum_snr"], snr, rtol=1e-6)
    for out in ("image", "spectrum", "joint"):
        rows = scores.filter(pa.compute.equal(scores.column("modality"), out))
        sid = rows.column("object_id").to_numpy(zero_copy_only=False)
        pos = {k: i for i, k in enumerate(ids)}
        sel = np.array([pos[k] for k in sid])
        got = res["modalities"][out]["nuisance_spearman"]
        sc = rows.column("score").to_numpy()
        assert got["image_flux"] == pytest.approx(spearmanr(sc, flux[sel]).statistic)
        assert got["spectrum_snr"] == pytest.approx(spearmanr(sc, snr[sel]).statistic)


# ------------------------------------------------------------------ mismatch without a shared space
def test_mismatch_refuses_models_without_a_shared_space():
    reg = registry()
    plain, shared = reg.model("baseline"), None
    assert not plain.shared_space
    with pytest.raises(UsageError) as err:
        MismatchDetector().check_model(plain)
    assert "declares no shared image-spectrum space" in str(err.value) and "\n" not in str(err.value)
    MismatchDetector(align="cca").check_model(plain)  # an explicit alignment: allowed
    from dataclasses import replace

    shared = replace(plain, name="shared", shared_space=True)
    MismatchDetector().check_model(shared)
    # fusion refuses an explicit mismatch=true likewise, and leaves auto out quietly
    with pytest.raises(UsageError, match="shared"):
        FusionDetector(mismatch=True).check_model(plain)
    FusionDetector(mismatch=True).check_model(shared)


# ------------------------------------------------------------------ every class findable, none trivial
#: class -> the baseline-strong statistic that docs/datasets/synthetic.md says makes it detectable (mismatch: the
#: distance of the joint flux-consistency column from its median)
DESIGNED = {
    "lens": "seg_asymmetry_vis_centred",  # arcs: light on one side of the lens, not point-symmetric
    "merger": "seg_asym_residual_centred",  # the companion's and tail's light in the asymmetric residual
    "agn": "vis_core_fraction",  # a point source in the VIS core
    "eelg": "line_OIII_5007",  # [OIII]5007 at the spectrum's own redshift
    "sat_trail": "vis_radon",  # Radon line excess of the off-source VIS residual
    "cosmic_ray": "vis_sharpness",  # sharper than the PSF, off the sources
    "dead_arm": "longest_masked_run",
    "mismatch": "spectrum_image_flux_ratio",
}
#: a reduced default survey: 600 objects, 2 % of each class (12 each; the default is 0.625 %)
CLASS_SURVEY = {"size": 600, "seed": 5, "chunk_size": 300, "rates": {c: 0.02 for c in DESIGNED}}


@pytest.fixture(scope="module")
def class_survey(tmp_path_factory):
    """(anomaly_class [N], {output: features [N, D]}) of :data:`CLASS_SURVEY`."""
    import os

    from fmb.datasets.synthetic import open_dataset

    old = os.environ.get("FMB_HOME")
    os.environ["FMB_HOME"] = str(tmp_path_factory.mktemp("classes"))
    try:
        t = pa.Table.from_batches(list(open_dataset(**CLASS_SURVEY).iter_batches(300)))
    finally:
        if old is None:
            del os.environ["FMB_HOME"]
        else:
            os.environ["FMB_HOME"] = old
    spec = registry().model("baseline-strong")
    emb = spec.load()(spec).embed(t.combine_chunks().to_batches()[0])
    return t.column("anomaly_class").to_numpy(zero_copy_only=False), emb


def _class_auroc(cls: np.ndarray, score: np.ndarray, c: str) -> float:
    from sklearn.metrics import roc_auc_score

    m = (cls == c) | (cls == "normal")
    return float(roc_auc_score(cls[m] == c, score[m]))


def test_each_class_is_findable_by_its_designed_statistic(class_survey):
    """Each class against normal objects by the one statistic the docs name for it (12 per class, 504 normal):
    AUROC > 0.75 (sat_trail: > 0.7, and a detection rate far above the false-alarm rate, see below).
    Fails when a generator or feature change hides a class."""
    cls, emb = class_survey
    joint = emb["joint"]
    names = (*IMAGE_NAMES, *SPECTRUM_NAMES, *JOINT_NAMES)
    got = {}
    for c, name in DESIGNED.items():
        assert (cls == c).sum() == 12
        x = joint[:, names.index(name)].astype(np.float64)  # joint = image, spectrum, joint-only columns
        if c == "mismatch":
            x = np.abs(x - np.median(x))
        got[c] = _class_auroc(cls, x, c)
    assert all(v > 0.75 for c, v in got.items() if c != "sat_trail"), got
    # vis_radon is a detection above the largest line of pure noise, 0 below it: trails under it tie with
    # the normal stamps, so its AUROC undersells it; what it claims is a detection rate far above the
    # normal stamps' false-alarm rate
    x = joint[:, names.index("vis_radon")]
    detected, false_alarm = (x[cls == "sat_trail"] > 0).mean(), (x[cls == "normal"] > 0).mean()
    # measured (version 6): 6 of 12 trails detected, 6 of 504 normal stamps above 0
    assert detected >= 0.4 and detected >= 10 * false_alarm, (detected, false_alarm)
    assert got["sat_trail"] > 0.7, got


def test_every_class_is_neither_impossible_nor_trivial_for_the_strong_floor(class_survey):
    """Per class against normal objects, the best AUROC of lof on the strong floor's image, spectrum and joint
    outputs (the labels used only to measure) lies between chance and trivial: 0.6 < AUROC < 0.99. Above 0.99
    the benchmark could not tell a good model from the floor on that class; below 0.6 the class is noise to
    it. Measured (this survey: 16 % anomalies, so neighbourhoods hold more of them than the default 5 %):
    lens 0.95, merger 0.86, agn 0.84, eelg 0.98, sat_trail 0.76, cosmic_ray 0.96, mismatch 0.69,
    dead_arm 0.98 (baseline-strong preprocessing version 5, generator fmb-synthetic-4; version 4 on
    generator 3: merger 0.73)."""
    cls, emb = class_survey
    best = {c: 0.0 for c in DESIGNED}
    for out in ("image", "spectrum", "joint"):
        score = registry().make_detector("lof", {}).fit_score(emb[out], seed=0)
        for c in DESIGNED:
            best[c] = max(best[c], _class_auroc(cls, score, c))
    assert all(0.6 < v < 0.99 for v in best.values()), sorted(best.items())


def test_radon_column_sees_a_faint_trail_and_not_a_cosmic_ray(stamp64):
    """A straight VIS trail of 3 sigma per pixel (no pixel a 5-sigma detection; Gaussian sigma 0.8 px, off the
    grid's angles) raises vis_radon well above the clean stamp's; a 50-sigma single pixel, which raises
    vis_sharpness, moves vis_radon by little (the residual is clipped at 3 sigma before the line sums)."""
    img = stamp64
    h, w = img.shape[2:]
    noise = 1.4826 * np.median(np.abs(img[0, 0, :8, :8] - np.median(img[0, 0, :8, :8])))  # a corner: sky only
    radon, sharp = IMAGE_NAMES.index("vis_radon"), IMAGE_NAMES.index("vis_sharpness")
    base = image_features(img)[0]
    yy, xx = np.mgrid[:h, :w]
    theta = np.deg2rad(31.0)
    d = (xx - w / 2) * np.sin(theta) - (yy - h / 2) * np.cos(theta) - 0.25 * h  # a line through the stamp's edge
    trail = img.copy()
    trail[0, 0] += 3 * noise * np.exp(-0.5 * (d / 0.8) ** 2)
    spike = img.copy()
    spike[0, 0, 5, 26] += 50 * noise
    f_trail, f_spike = image_features(trail)[0], image_features(spike)[0]
    assert np.sinh(f_trail[radon]) > np.sinh(base[radon]) + 3  # asinh of sigma units
    assert np.sinh(f_spike[sharp]) > np.sinh(base[sharp]) + 10
    assert abs(np.sinh(f_spike[radon]) - np.sinh(base[radon])) < 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_filter_ranks_a_faint_trail_above_an_edge_on_galaxy(stamp64, seed):
    """vis_radon is a matched line filter minus the largest line of pure noise: a clean stamp sits at 0 or
    just above; a faint trail (3 sigma per pixel at its peak, no pixel a 5-sigma detection; a random angle and
    offset, as the generator draws them) stands well above it, and so above a stamp holding a bright
    edge-on galaxy (axis ratio 0.1, 500 sigma at its peak, off the centre at a random angle), whose light
    the source mask removes before the line sums."""
    rng = np.random.default_rng(seed)
    img = stamp64
    h, w = img.shape[2:]
    noise = 1.4826 * np.median(np.abs(img[0, 0, :8, :8] - np.median(img[0, 0, :8, :8])))  # a corner: sky only
    radon = IMAGE_NAMES.index("vis_radon")
    yy, xx = np.mgrid[:h, :w]
    theta, offset = rng.uniform(0, np.pi), rng.uniform(-0.3, 0.3) * h
    d = (xx - w / 2) * np.sin(theta) - (yy - h / 2) * np.cos(theta) - offset
    trail = img.copy()
    trail[0, 0] += 3.0 * noise * np.exp(-0.5 * (d / 0.8) ** 2)
    phi, cx, cy = rng.uniform(0, np.pi), w / 2 + rng.uniform(-12, 12), h / 2 + rng.uniform(-12, 12)
    u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
    v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
    disc = np.exp(-0.5 * ((u / 8.0) ** 2 + (v / 0.8) ** 2))  # 0.8" long, 0.08" thin (sigma)
    edge_on = img.copy()
    edge_on[0] += 500 * noise * disc  # in every band (a galaxy), NISP's own noise scale is larger: VIS sets it
    f = image_features(np.concatenate([img, trail, edge_on]))[:, radon]
    clean, with_trail, with_galaxy = np.sinh(f)  # asinh of sigma units above the noise's largest line
    assert clean < 1.0
    assert with_trail > 1.5
    assert with_trail > with_galaxy + 1.0


# ------------------------------------------------------------------ close companion (merger) column
def _pair_stamps(stamp: int = 48, sep: float = 1.2, ratio: float = 0.25, angle: float = 0.6, seed: int = 3):
    """(pair, projection) [2, 4, S, S] nanomaggies, rendered with the synthetic generator's own Sersic, PSF and
    noise: the same host (VIS 6 nmgy, red colours 1/2/2.6/3.2) with a second galaxy at ``sep`` arcsec of
    ``ratio`` x the host's VIS flux, either of the host's colours (a close companion) or of a blue field
    galaxy's (colours 1/0.6/0.5/0.45; the same VIS flux, place and shape); the same noise realisation."""
    from fmb.datasets.synthetic import images as I
    from fmb.datasets.synthetic import survey as S

    x, y = I.model_grid(stamp)
    host = I.sersic(x, y, [0.5], [1.0], [0.7], [0.3], [0.0], [0.0])[0]
    other = I.sersic(x, y, [0.3], [1.0], [0.8], [1.1], [sep * np.cos(angle)], [sep * np.sin(angle)])[0]
    red = 6.0 * np.array([1.0, 2.0, 2.6, 3.2])
    blue = 6.0 * np.array([1.0, 0.6, 0.5, 0.45])
    pre = np.stack([red[:, None, None] * host + ratio * col[:, None, None] * other for col in (red, blue)]).astype(
        np.float32
    )
    img = I.render(pre, stamp).astype(np.float64)
    noise = np.random.default_rng(seed).standard_normal(img.shape[1:]) * S.PIX_SIGMA_NMGY[:, None, None]
    return img + noise[None]


def test_pair_odds_ranks_a_same_colour_companion_above_a_projection():
    """A host-coloured companion (25 % of the host's light at 1.2") scores far above a blue field galaxy of
    the same VIS flux at the same place (its NISP colours differ by a factor 3-7 from the host's), and near
    its expected value log10(0.25) - 4 log10(1.2) = -0.92 less the colour term chi^2 / (2 ln 10) (0.65 for
    the mean chi^2 of 3 degrees of freedom, 1.3 at its 95th percentile); the host alone has no candidate."""
    pair, proj = _pair_stamps()
    col = IMAGE_NAMES.index("pair_odds")
    f = np.log10(image_features(np.stack([pair, proj]))[:, col])
    assert f[0] > f[1] + 2.0, f
    assert -0.92 - 1.3 < f[0] < -0.92 + 0.2, f
    alone = _pair_stamps(ratio=0.0)[0]
    assert image_features(alone[None])[0, col] == pytest.approx(1e-6)  # 10^PAIR_NONE: nothing to pair with


def test_pair_odds_falls_with_separation_and_is_rotation_invariant():
    """The chance-projection prior: the same companion at 2.2" scores lower than at 1.2" (by about
    4 log10(2.2) = 1.37 dex, less the noise in the two colour terms); rotating or mirroring the stamp (the
    pair's orientation on the sky) changes the score by little (the light centre and the 180-degree rotation
    are sub-pixel and symmetric)."""
    col = IMAGE_NAMES.index("pair_odds")
    near, far = _pair_stamps(sep=1.2)[0], _pair_stamps(sep=2.2)[0]
    views = np.stack([near, np.rot90(near, 1, axes=(1, 2)), near[:, ::-1, :], near[:, :, ::-1], far])
    f = np.log10(image_features(np.ascontiguousarray(views))[:, col])
    assert f[0] - f[4] > 0.5, f  # 1.37 expected; the two colour chi^2 differ by noise
    np.testing.assert_allclose(f[1:4], f[0], atol=0.15)


def test_strong_image_features_refuse_non_finite_pixels():
    """A stamp with NaN pixels is refused with one line naming the row (never zero-filled into a fake but
    finite feature row); a blank (all-zero) stamp is a valid image and gives finite features with no
    companion candidate."""
    img = _pair_stamps()[:1].repeat(3, axis=0)
    img[2, 1, 4:9, 4:9] = np.nan
    with pytest.raises(ModelError, match=r"row 2 .*25 non-finite") as err:
        image_features(img)
    assert "\n" not in str(err.value)
    blank = image_features(np.zeros((1, 4, 32, 32)))
    assert np.isfinite(blank).all() and blank[0, IMAGE_NAMES.index("pair_odds")] == pytest.approx(1e-6)
