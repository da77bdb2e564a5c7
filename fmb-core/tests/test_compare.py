"""``fmb compare``: pairwise statistics on aligned objects, bootstrap intervals, disagreement sets."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fmb.cli import cli
from fmb.compare.compare import compare
from fmb.compare.runs import System, align
from fmb.compare.stats import bootstrap_ci, disagreement, pair_stats
from fmb.errors import UsageError
from fmb.testing.cli import fmb_run


def system(name, ids, scores):
    return System(name, "run", "m", "image", "d", 0, np.asarray(ids), np.asarray(scores, float))


def test_identical_rankings_agree_perfectly():
    s = np.random.default_rng(0).normal(size=300)
    st = pair_stats(s, s * 2 + 1, top_k=20)
    assert st["spearman"] == pytest.approx(1.0)
    assert st["jaccard_top1pct"] == st["jaccard_top20"] == 1.0
    assert st["retention_top1_top1"] == st["retention_top1_top10"] == 1.0


def test_known_sets():
    a = np.arange(200, dtype=float)  # top 1% (2 objects): 199, 198
    b = a.copy()
    b[198] = -1.0  # 198 drops to the bottom: top-2 of b = {199, 197}
    st = pair_stats(a, b, top_k=2)
    assert st["jaccard_top1pct"] == pytest.approx(1 / 3)
    assert st["retention_top1_top1"] == 0.5 and st["retention_top1_top10"] == 0.5
    assert disagreement(a, b, 2).tolist() == [198]


def test_align_intersects_and_counts_dropped():
    al = align([system("a", [1, 2, 3, 4], [1, 2, 3, 4]), system("b", [3, 4, 5, 2], [9, 8, 7, 6])])
    assert al.object_id.tolist() == [2, 3, 4]
    assert al.scores.tolist() == [[2, 6], [3, 9], [4, 8]]
    assert al.dropped == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    "systems, msg",
    [
        ([system("a", [1, 2], [1, 2])], "at least 2 systems"),
        ([system("a", [1, 2], [1, 2]), system("b", [2, 3], [1, 2])], "only 1 object"),
        ([system("a", [1, 1], [1, 2]), system("b", [1, 2], [1, 2])], "duplicate"),
    ],
)
def test_align_bad_input(systems, msg):
    with pytest.raises(UsageError, match=msg):
        align(systems)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    a = rng.normal(size=400)
    b = a + rng.normal(size=400)
    ci1 = bootstrap_ci(lambda i: pair_stats(a[i], b[i], 10), 400, n_boot=100, seed=3)
    ci2 = bootstrap_ci(lambda i: pair_stats(a[i], b[i], 10), 400, n_boot=100, seed=3)
    assert ci1 == ci2
    lo, hi = ci1["spearman"]
    assert lo < pair_stats(a, b, 10)["spearman"] < hi


def test_compare_matrices_are_oriented_source_to_target():
    rng = np.random.default_rng(2)
    s = rng.normal(size=(500, 3))
    s[:, 1] = s[:, 0] + 0.01 * rng.normal(size=500)
    al = align([system(n, np.arange(500), s[:, j]) for j, n in enumerate("abc")])
    c = compare(al, top_k=25, n_boot=20)
    M = c.matrix("spearman")
    assert M[0, 1] > 0.99 and abs(M[0, 2]) < 0.2 and np.allclose(M, M.T)
    assert len(c.pairs) == 6 and {"spearman_lo", "retention_top1_top10_hi"} <= set(c.pairs[0])


def write_run(path, ids, scores, modality="image", model="m"):
    path.mkdir(parents=True)
    (path / "results.json").write_text(
        json.dumps({"model": {"name": model}, "config": {"detector": "d", "detector_params": {}, "seed": 0}})
    )
    pq.write_table(
        pa.table({"object_id": ids, "modality": [modality] * len(ids), "score": scores}), path / "scores.parquet"
    )


def test_cli_compare_runs(toy, tmp_path):
    for det in ("ecod", "hbos"):
        r = fmb_run(tmp_path / det, "--modality", "image", detector=det)
    write_run(tmp_path / "other", list(range(100, 300)), list(np.arange(200.0)))
    r = CliRunner().invoke(
        cli,
        [
            "compare",
            str(tmp_path / "ecod"),
            str(tmp_path / "hbos"),
            str(tmp_path / "other"),
            "--out",
            str(tmp_path / "cmp"),
            "--top-k",
            "10",
            "--bootstrap",
            "20",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "20 common objects" in r.output and "dropped" in r.output
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert summary["n_common_objects"] == 20 and len(summary["pairs"]) == 6
    assert summary["dropped"]["m/image/d"] == 180
    for name in ("pairs", "matrix_spearman", "matrix_jaccard_top10", "matrix_retention_top1_top10", "disagreements"):
        assert (tmp_path / "cmp" / f"{name}.parquet").exists() and (tmp_path / "cmp" / f"{name}.csv").exists()


def test_cli_compare_disjoint_runs_is_one_line(tmp_path):
    write_run(tmp_path / "a", [1, 2, 3], [1.0, 2.0, 3.0])
    write_run(tmp_path / "b", [4, 5, 6], [1.0, 2.0, 3.0])
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "only 0 object(s) are common" in r.output
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not an fmb run folder" in r.output
