"""Cross-modal mismatch, percentile fusion, and multi-input detectors in ``fmb run``."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.detectors.fusion import FusionDetector, fuse, passes, percentiles, uplift
from fmb.detectors.mismatch import MismatchDetector, cosine_rows
from fmb.errors import DetectorError, UsageError
from fmb.testing.cli import fmb_run


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_cosine_rows():
    A = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    B = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(cosine_rows(A, B), [1.0, -1.0, 0.0])


def test_mismatch_scores_the_swapped_pairs_highest():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 8))
    B = A + 0.1 * rng.normal(size=A.shape)
    B[:3] = rng.normal(size=(3, 8))  # three objects whose spectrum belongs to someone else
    s = MismatchDetector().fit_score_inputs({"image": A, "spectrum": B})
    assert set(np.argsort(-s)[:3]) == {0, 1, 2}


def test_mismatch_cca_aligns_different_spaces_out_of_fold():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3))
    A = z @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(200, 10))
    B = z @ rng.normal(size=(3, 5)) + 0.05 * rng.normal(size=(200, 5))
    B[:4] = B[100:104]  # mismatched pairs
    det = MismatchDetector(align="cca", components=3)
    s = det.fit_score_inputs({"image": A, "spectrum": B}, seed=0)
    assert set(np.argsort(-s)[:8]) >= {0, 1, 2, 3}
    assert det.folds_.shape == (200,)


def test_mismatch_different_dims_is_one_clear_line():
    with pytest.raises(DetectorError, match=r"image \(4-d\) and spectrum \(3-d\).*align=cca"):
        MismatchDetector().fit_score_inputs({"image": np.ones((10, 4)), "spectrum": np.ones((10, 3))})
    with pytest.raises(DetectorError, match="constant"):
        MismatchDetector(align="cca", folds=2).fit_score_inputs(
            {"image": np.ones((10, 4)), "spectrum": np.random.default_rng(0).normal(size=(10, 3))}
        )


def test_percentiles_and_known_fusion():
    np.testing.assert_allclose(percentiles([10.0, 30.0, 20.0, 20.0]), [0.25, 1.0, 0.625, 0.625])
    pi, ps, pm = np.array([1.0, 0.25]), np.array([0.25, 0.25]), np.array([0.5, 1.0])
    np.testing.assert_allclose(fuse(pi, ps, None, "geo"), [0.5, 0.25])
    np.testing.assert_allclose(fuse(pi, ps, pm, "geo"), [0.25, 0.25])
    np.testing.assert_allclose(fuse(pi, ps, pm, "min"), [0.125, 0.25])
    np.testing.assert_allclose(fuse(pi, ps, pm, "avg"), [0.3125, 0.25])
    np.testing.assert_allclose(uplift(fuse(pi, ps, None, "geo"), pi, ps), [-0.5, 0.0])
    assert passes({"image": pi, "spectrum": ps}, {"image": 0.5, "spectrum": 0.2, "mismatch": 0.9}).tolist() == [
        True,
        False,
    ]
    np.testing.assert_allclose(fuse(pi, ps, None, "max"), [1.0, 0.25])
    np.testing.assert_allclose(fuse(pi, ps, pm, "max"), [1.0, 1.0])  # max over every component, mismatch too
    pc = np.array([0.5, 0.125])  # a third (crossmodal) component joins every mode
    np.testing.assert_allclose(fuse(pi, ps, None, "geo", pc), [(1.0 * 0.25 * 0.5) ** (1 / 3), 0.25 * 0.5 ** (1 / 3)])
    np.testing.assert_allclose(fuse(pi, ps, None, "min", pc), [0.25, 0.125])
    np.testing.assert_allclose(fuse(pi, ps, pm, "avg", pc), [0.5 * 1.75 / 3, 0.625 / 3])
    np.testing.assert_allclose(fuse(pi, ps, None, "max", pc), [1.0, 0.25])
    with pytest.raises(UsageError, match="mode"):
        fuse(pi, ps, None, "median")


@pytest.mark.parametrize("mode", ["geo", "min", "avg", "max"])
def test_fusion_detector_all_modes(mode):
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(80, 5)), rng.normal(size=(80, 5))
    A[0] += 8
    B[0] += 8  # anomalous in both modalities
    det = FusionDetector(base="ecod", mode=mode, mismatch=False, t_image=0.9)
    s = det.fit_score_inputs({"image": A, "spectrum": B})
    assert np.argmax(s) == 0 and s.max() == pytest.approx(1.0)
    assert set(det.extras_) == {"p_image", "p_spectrum", "uplift", "passes"}
    assert det.details_["n_passing"] == int((det.extras_["p_image"] >= 0.9).sum())
    if mode == "max":
        assert (det.extras_["uplift"] >= -1e-12).all()
    else:
        assert (det.extras_["uplift"] <= 1e-12).all()


def test_fusion_max_with_crossmodal_finds_single_component_anomalies():
    """Three kinds of anomaly, each visible in one component only: an image outlier, a spectrum outlier and a
        swapped pair (both modalities ordinary, their relation broken). ``max`` with the crossmodal component
        ranks all four rows in its top 8 (each component's top rows share the top of the max); ``avg`` without it
    leaves the swapped pair out."""
    rng = np.random.default_rng(4)
    n = 300
    z = rng.normal(size=(n, 3))
    A = np.hstack([z, 0.1 * rng.normal(size=(n, 2))])
    B = np.hstack([z @ rng.normal(size=(3, 3)), 0.1 * rng.normal(size=(n, 2))])
    A[0, 3] += 3.0  # image-only outlier (in a low-variance direction)
    B[1, 4] += 3.0  # spectrum-only outlier
    B[2], B[3] = B[3].copy(), B[2].copy()  # a swapped pair: each row ordinary on its own
    kw = {"base": "knn", "mismatch": False, "crossmodal_params": {"pca": 4, "neighbors": 10}}
    det = FusionDetector(mode="max", crossmodal=True, **kw)
    s = det.fit_score_inputs({"image": A, "spectrum": B}, seed=0)
    assert set(det.components_) == {"image", "spectrum", "crossmodal"} and det.details_["crossmodal_used"]
    np.testing.assert_allclose(s, np.max([percentiles(c) for c in det.components_.values()], axis=0))
    assert {0, 1, 2, 3} <= set(np.argsort(-s, kind="stable")[:8].tolist())
    avg = FusionDetector(mode="avg", **{**kw, "crossmodal_params": None}).fit_score_inputs({"image": A, "spectrum": B})
    assert not {2, 3} & set(np.argsort(-avg, kind="stable")[:8].tolist())
    with pytest.raises(UsageError, match="crossmodal"):
        FusionDetector(crossmodal=True, crossmodal_params={"pca": 0})


def test_fusion_consistency_scores_the_joint_extra_columns_as_a_component():
    """A joint embedding = image (30 columns), spectrum (20), then one column comparing them (a flux ratio).
    Rows 5 and 6 are ordinary in both modalities and off only in that column (4 sigma): knn on the whole
    joint (51 columns alike) ranks row 5 among the ordinary rows, ``max`` with the
    consistency component puts both in its top 5. The component is knn's score of the extra column alone."""
    rng = np.random.default_rng(5)
    n = 200
    A, B = rng.normal(size=(n, 30)), rng.normal(size=(n, 20))
    A[0, 0] += 12.0  # an image outlier
    extra = 0.1 * rng.normal(size=(n, 1))
    extra[5], extra[6] = 0.4, -0.4  # the cross-modal relation broken (4 sigma), every embedding column ordinary
    J = np.hstack([A, B, extra])
    kw = {"base": "knn", "mismatch": False}
    det = FusionDetector(mode="max", consistency=True, **kw)
    assert det.inputs == ("image", "spectrum", "joint")
    s = det.fit_score_inputs({"image": A, "spectrum": B, "joint": J}, seed=0)
    assert set(det.components_) == {"image", "spectrum", "consistency"} and det.details_["consistency_used"]
    from fmb.plugins import registry

    np.testing.assert_allclose(det.components_["consistency"], registry().make_detector("knn", {}).fit_score(extra))
    np.testing.assert_allclose(s, np.max([percentiles(c) for c in det.components_.values()], axis=0))
    # each component's own top rows share the top of the max (the spectrum's too): both in the top 5
    assert {0, 5, 6} <= set(np.argsort(-s, kind="stable")[:5].tolist())
    whole = registry().make_detector("knn", {}).fit_score(J)
    assert 5 not in set(np.argsort(-whole, kind="stable")[:10].tolist())
    # a joint that is not image + spectrum + extra columns is refused, never scored by position
    with pytest.raises(DetectorError, match="consistency=true"):
        det.fit_score_inputs({"image": A, "spectrum": B, "joint": np.hstack([B, A, extra])})
    with pytest.raises(DetectorError, match="consistency=true"):
        det.fit_score_inputs({"image": A, "spectrum": B, "joint": np.hstack([A, B])})
    # without the flag: two inputs, no consistency component
    assert FusionDetector(mode="max", **kw).inputs == ("image", "spectrum")


def test_fusion_uses_mismatch_when_dims_match_and_rejects_bad_params():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(40, 4))
    det = FusionDetector(base="knn", base_params={"n_neighbors": 3})
    det.fit_score_inputs({"image": A, "spectrum": A + 0.01 * rng.normal(size=A.shape)})
    assert det.details_["mismatch_used"] and "mismatch" in det.components_
    for bad in ({"mode": "median"}, {"t_image": 2.0}, {"mismatch": "maybe"}, {"base": "fusion"}):
        with pytest.raises(UsageError):
            FusionDetector(**bad)


def test_run_mismatch_on_baseline_explains_dims(toy, tmp_path):
    r = fmb_run(tmp_path, detector="mismatch", dataset="toy:size=60", code=2)
    assert "declares no shared image-spectrum space" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_run_fusion_reports_cross_modality_with_components(toy, tmp_path):
    r = fmb_run(tmp_path, detector="fusion:base=iforest,mode=geo,align=cca")
    res = json.loads((tmp_path / "results.json").read_text())
    entry = res["modalities"]["image+spectrum"]
    assert set(entry["components"]) == {"image", "spectrum", "mismatch"}
    assert entry["details"]["mismatch_used"] and 0 <= entry["metrics"]["auroc"] <= 1
    t = pq.read_table(tmp_path / "scores.parquet")
    assert t.num_rows == 120 and set(t.column("modality").to_pylist()) == {"image+spectrum"}
    assert {"p_image", "p_spectrum", "p_mismatch", "uplift", "passes"} <= set(t.column_names)
    r = fmb_run(tmp_path / "x", "--modality", "image", detector="mismatch:align=cca", dataset="toy:size=60", code=2)
    assert "drop --modality" in r.output


def test_run_fusion_consistency_end_to_end(tmp_path):
    """``fmb run`` feeds image, spectrum and joint to ``fusion:consistency=true``: baseline-strong (whose joint
    ends with the flux-ratio column) gets a p_consistency column; baseline (joint = image + spectrum, no extra
    column) is refused in one line naming the model."""
    fmb_run(
        tmp_path / "a",
        model="baseline-strong",
        detector="fusion:base=knn,mode=max,consistency=true",
        dataset="synthetic:size=60",
    )
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    entry = res["modalities"]["image+spectrum+joint"]
    assert set(entry["components"]) == {"image", "spectrum", "consistency"} and entry["details"]["consistency_used"]
    t = pq.read_table(tmp_path / "a" / "scores.parquet")
    p = np.asarray(t.column("p_consistency").to_pylist())
    # percentiles of 60 scores (ties share their average rank, so the mean rank is still 61 / 2)
    assert p.max() == 1.0 and p.min() > 0 and p.mean() == pytest.approx(61 / 120)
    r = fmb_run(tmp_path / "b", detector="fusion:base=knn,consistency=true", dataset="synthetic:size=60", code=2)
    assert "model 'baseline' has joint 1152 columns" in r.output and "(needs extra columns after them)" in r.output
    assert len(r.output.strip().splitlines()) == 1
