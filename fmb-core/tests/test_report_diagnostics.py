"""The report's diagnostics: ranking stability and mean ± sd over seeds, nuisance correlations, the 2-D map
cache, step progress, and unlabelled objects kept out of every figure of truth (tiny toy data)."""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rich.console import Console
from sklearn.metrics import roc_auc_score

from fmb import leaderboard as L
from fmb.cli import cli
from fmb.data import canonical as C
from fmb.plugins import registry
from fmb.report import embedmap as E
from fmb.report import figures as F
from fmb.report.collect import Ranking
from fmb.report.progress import Steps
from fmb.reporting import Reporter
from fmb.testing.cli import fmb_run


def invoke(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ------------------------------------------------------------------ ranking stability between seeds
def _top(ids_in_order, n=100):
    """Scores over ids 0..n-1 whose ranking starts with ``ids_in_order`` (then the rest by id)."""
    rest = [i for i in range(n) if i not in set(ids_in_order)]
    order = list(ids_in_order) + rest
    score = np.empty(n)
    score[order] = np.arange(n, 0, -1, dtype=float)
    return np.arange(n), score


def test_seed_stability_matches_hand_computed_jaccard(monkeypatch):
    a = _top(range(0, 50))  # top-50: 0..49, top-1: 0
    b = _top(range(10, 60))  # top-50: 10..59, top-1: 10
    c = _top([0, *range(25, 74)])  # top-50: {0} + 25..73, top-1: 0
    perm = np.random.default_rng(0).permutation(100)  # row order must not matter: aligned by object id
    b = (b[0][perm], b[1][perm])
    runs = {"A": a, "B": b, "C": c}
    monkeypatch.setattr(L, "_ranking", lambda d, modality: runs[d])
    got = L.seed_stability(["A", "B", "C"], "image")
    # |A∩B| = 40, |A∪B| = 60; |A∩C| = 26 ({0} + 25..49), |A∪C| = 74; |B∩C| = 35 (25..59), |B∪C| = 65
    j50 = [40 / 60, 26 / 74, 35 / 65]
    assert got["jaccard@50_mean"] == pytest.approx(sum(j50) / 3)
    assert got["jaccard@50_min"] == pytest.approx(26 / 74)
    # top 1% of 100 objects = 1 object: A and C share object 0, B's is 10
    assert got["jaccard@1%_mean"] == pytest.approx(1 / 3)
    assert got["jaccard@1%_min"] == 0.0
    one = L.seed_stability(["A"], "image")
    assert all(math.isnan(v) for v in one.values()) and set(one) == set(got)


def _topset(ids, score, k):
    order = sorted(range(len(ids)), key=lambda i: (-score[i], ids[i]))  # ties: the smaller id first
    return {ids[i] for i in order[:k]}


def test_seed_matrix_leaderboard_gives_mean_sd_and_stability(toy, tmp_path):
    out = tmp_path / "m"
    fmb_run(out, "--modality", "image", "--seed", 0, "--seed", 1, "--seed", 2, "--no-report", dataset="toy:size=60")
    df = pd.read_csv(out / "leaderboard.csv")
    assert len(df) == 1 and df.loc[0, "n_seeds"] == 3
    dirs = sorted(p for p in out.iterdir() if (p / "results.json").exists())
    res = [json.loads((d / "results.json").read_text())["modalities"]["image"]["metrics"] for d in dirs]
    for key in ("precision@10", "recall@1%", "average_precision"):
        col = "ap" if key == "average_precision" else key
        vals = [r[key] for r in res]
        assert df.loc[0, col] == pytest.approx(np.mean(vals))
        assert df.loc[0, f"{col}_sd"] == pytest.approx(np.std(vals, ddof=1))
    sets = {}
    for d in dirs:
        t = pq.read_table(d / "scores.parquet").to_pandas()
        ids, s = t["object_id"].tolist(), t["score"].tolist()
        sets[d] = (_topset(ids, s, 50), _topset(ids, s, 1))  # 1% of 60 objects rounds to 1
    pairs = [(dirs[0], dirs[1]), (dirs[0], dirs[2]), (dirs[1], dirs[2])]
    for j, k in ((0, "50"), (1, "1%")):
        jac = [len(sets[x][j] & sets[y][j]) / len(sets[x][j] | sets[y][j]) for x, y in pairs]
        assert df.loc[0, f"jaccard@{k}_mean"] == pytest.approx(np.mean(jac))
        assert df.loc[0, f"jaccard@{k}_min"] == pytest.approx(min(jac))
    # the report of the matrix: stability section, and every metric as mean ± sd over seeds
    invoke("report", out, "--top-k", 2, "--embedding-map", "pca")
    page = text_of((out / "report.html").read_text(encoding="utf-8"))
    assert "Ranking stability over seeds" in page and "arXiv:1911.06823" in page
    assert f"{df.loc[0, 'jaccard@50_mean']:.2f} (min {df.loc[0, 'jaccard@50_min']:.2f})" in page
    p10 = [r["precision@10"] for r in res]
    assert f"{np.mean(p10):.3f} ± {np.std(p10, ddof=1):.3f}" in page
    classes = sorted(res[0]["per_class"])
    cells = []
    for c in classes:
        rec = [r["per_class"][c]["recall@5%"] for r in res]
        cells.append(f"{np.mean(rec):.3f} ± {np.std(rec, ddof=1):.3f}")
    assert f"image 3 {' '.join(cells)}" in page  # recall per class: mean ± sd over the seeds


# ------------------------------------------------------------------ unlabelled objects
def _partly_labelled():
    """40 objects: 10 anomalies (labelled), 20 labelled normals, 10 unlabelled with the highest scores."""
    rng = np.random.default_rng(1)
    score = np.r_[rng.normal(2, 1, 10), rng.normal(0, 1, 20), rng.normal(5, 0.1, 10)]
    y = np.r_[np.ones(10, bool), np.zeros(30, bool)]  # resolve_labels: an unlabelled object reads False
    labelled = np.r_[np.ones(30, bool), np.zeros(10, bool)]
    rk = Ranking("image", np.arange(40), score, np.argsort(np.argsort(-score)) + 1, {C.IS_ANOMALY: y}, labelled)
    return rk, score, y, labelled


def test_roc_pr_compare_leaves_unlabelled_objects_out(monkeypatch, tmp_path):
    rk, score, y, labelled = _partly_labelled()
    figs = []
    monkeypatch.setattr(F, "save", lambda fig, path: figs.append(fig) or path)
    F.roc_pr_compare([("sys", rk)], tmp_path / "x.png")
    roc_legend = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    right = roc_auc_score(y[labelled], score[labelled])
    wrong = roc_auc_score(y, score)  # the unlabelled objects counted as normal
    assert abs(right - wrong) > 0.1
    assert roc_legend == [f"{right:.3f}  sys"]


def test_unlabelled_objects_are_shown_apart(monkeypatch, tmp_path):
    from fmb.report.build import _caption
    from fmb.report.collect import Run
    from fmb.report.gallery import Card

    rk, _, y, labelled = _partly_labelled()
    figs = []
    monkeypatch.setattr(F, "save", lambda fig, path: figs.append(fig) or path)
    F.score_histograms(Run(tmp_path, {}, [rk], "r"), tmp_path / "s.png")
    legend = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert legend == ["normal (20)", "anomalous (10)", "unlabelled (10)"]
    xy = np.random.default_rng(0).normal(size=(40, 2))
    cls = np.where(labelled, np.where(y, "blob", C.NORMAL_CLASS), C.UNLABELLED_CLASS)
    F.embedding_maps({"image": xy}, {"anomaly class": ("class", cls)}, "PCA", "t", tmp_path / "m.png")
    legend = [t.get_text() for t in figs[1].axes[0].get_legend().get_texts()]
    assert legend == ["unlabelled", "normal", "blob"]
    cap = _caption(Card("7", 1, 5.0, C.UNLABELLED_CLASS, None, None), "image", [])
    assert 'class="cls-unl"' in cap and "cls-anom" not in cap


# ------------------------------------------------------------------ nuisance
def test_nuisance_read_once_per_run_stored_per_object_and_shown(toy, tmp_path, monkeypatch):
    from fmb.protocol import nuisance as N

    rows = []
    real = N.object_variables
    monkeypatch.setattr(N, "object_variables", lambda b: rows.append(b.num_rows) or real(b))
    fmb_run(tmp_path / "r", dataset="toy:size=60")
    assert sum(rows) == 60  # one pass over the 60 objects for the three scored outputs
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    scores = pq.read_table(tmp_path / "r" / "scores.parquet").to_pandas()
    data = registry().dataset("toy").load()(size=60)
    batch = next(data.iter_batches(1000))
    ids = batch.column(C.OBJECT_ID).to_numpy(zero_copy_only=False)
    snr = np.median(np.abs(C.column_array(batch, C.FLUX)) * np.sqrt(C.column_array(batch, C.IVAR)), axis=1)
    flux = C.column_array(batch, C.IMAGE)[:, 0].astype(np.float64).sum(axis=(1, 2))
    img = scores[scores["modality"] == "image"].set_index("object_id").loc[ids]
    np.testing.assert_allclose(img["spectrum_snr"], snr, rtol=1e-6)
    np.testing.assert_allclose(img["image_flux"], flux, rtol=1e-6)
    page = text_of((tmp_path / "r" / "report.html").read_text(encoding="utf-8"))
    assert "Nuisance diagnostics" in page
    for out in ("image", "spectrum", "joint"):
        ns = res["modalities"][out]["nuisance_spearman"]
        # table row: output, rho with S/N, rho with the magnitude (= minus rho with the flux)
        assert f"{out} {ns['spectrum_snr']:.3f} {-ns['image_flux']:.3f}" in page
    assert (tmp_path / "r" / "figures" / "nuisance.png").exists()


# ------------------------------------------------------------------ the 2-D map cache
def test_map_cache_reuses_only_the_same_input(fmb_home):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    ids = np.arange(50)
    first, reused = E.project_cached(X, ids, "pca", 0, "key1", "image")
    assert not reused
    np.testing.assert_array_equal(first, E.project(X, "pca", 0))
    again, reused = E.project_cached(X, ids, "pca", 0, "key1", "image")
    assert reused and np.array_equal(again, first)
    X2 = X.copy()
    X2[3, 2] += 1.0  # same key, other numbers (a rebuilt cache): never the stale map
    other, reused = E.project_cached(X2, ids, "pca", 0, "key1", "image")
    assert not reused
    np.testing.assert_array_equal(other, E.project(X2, "pca", 0))
    _, reused = E.project_cached(X2, ids[::-1].copy(), "pca", 0, "key1", "image")  # other object order
    assert not reused
    path = E.map_file("key1", "image", E.map_params("pca", 0, 50))
    path.write_bytes(b"not a map")  # a damaged file is recomputed
    fixed, reused = E.project_cached(X, ids, "pca", 0, "key1", "image")
    assert not reused and np.array_equal(fixed, first)
    assert E.map_file("key1", "image", E.map_params("pca", 1, 50)) != path  # the seed is part of the key


# ------------------------------------------------------------------ progress
def test_steps_write_plain_lines_outside_a_terminal():
    buf = io.StringIO()
    rep = Reporter(console=Console(file=buf, force_terminal=False))
    with Steps(rep, 2) as steps:
        with steps.step("embedding map of x", long=True):
            pass
        with steps.step("figures"):
            pass
    lines = buf.getvalue().splitlines()
    assert lines[0] == "report: embedding map of x ..."
    assert re.fullmatch(r"report: embedding map of x: \d+\.\d s \(1/2\)", lines[1])
    assert re.fullmatch(r"report: figures: \d+\.\d s \(2/2\)", lines[2]) and len(lines) == 3
    quiet = io.StringIO()
    with Steps(Reporter(console=Console(file=quiet, force_terminal=False), quiet=True), 1) as steps:
        with steps.step("figures"):
            pass
    assert quiet.getvalue() == "" and set(steps.seconds) == {"figures"}
