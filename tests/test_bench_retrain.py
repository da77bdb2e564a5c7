"""bench/bench_retrain.py's verdict: the same systems before and after, paired per seed, MET only over 3+ seeds."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_retrain.py"
_spec = importlib.util.spec_from_file_location("bench_retrain", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _kinds(random: dict, retrained: dict) -> dict:
    """``{kind: {seed: {system: {auroc, average_precision}}}}`` from ``{system: [(auroc, ap) per seed]}``."""
    out = {}
    for kind, table in (("random", random), ("retrained", retrained)):
        n = len(next(iter(table.values())))
        out[kind] = {
            k: {s: {"auroc": v[k][0], "average_precision": v[k][1]} for s, v in table.items()} for k in range(n)
        }
    return out


def test_best_system_gain_is_not_the_verdict_when_the_same_systems_lose():
    # the random init has one lucky system (spectrum AP 0.30); retraining lifts the other but lowers it
    random = {"a": [(0.70, 0.30), (0.72, 0.28), (0.68, 0.32)], "b": [(0.50, 0.05), (0.52, 0.07), (0.48, 0.06)]}
    retrained = {"a": [(0.60, 0.10), (0.62, 0.12), (0.58, 0.11)], "b": [(0.75, 0.15), (0.77, 0.13), (0.73, 0.14)]}
    v = bench.verdict(_kinds(random, retrained), [0, 1, 2])
    # by hand: per-seed means over a and b; gains AUROC (0.675-0.60, 0.695-0.62, 0.655-0.58) = 0.075 each
    assert v["auroc"]["random"] == pytest.approx(0.60)
    assert v["auroc"]["retrained"] == pytest.approx(0.675)
    assert v["auroc"]["gain"] == pytest.approx(0.075)
    assert v["auroc"]["gain_sd"] == pytest.approx(0.0, abs=1e-12)
    assert v["auroc"]["met"] and v["auroc"]["wins"] == 1
    # AP: random means (0.175, 0.175, 0.19), retrained (0.125, 0.125, 0.125): a loss
    assert v["average_precision"]["random"] == pytest.approx((0.175 + 0.175 + 0.19) / 3)
    assert v["average_precision"]["gain"] == pytest.approx(0.125 - (0.175 + 0.175 + 0.19) / 3)
    assert not v["average_precision"]["met"] and not v["met"]
    # the best system by AUROC: random a (0.70 avg), retrained b (0.75 avg) with its AP 0.14 < 0.30
    assert v["best"]["random"] == pytest.approx([0.70, 0.30])
    assert v["best"]["retrained"] == pytest.approx([0.75, 0.14])


def test_fewer_than_three_seeds_is_undecided(capsys):
    random = {"a": [(0.5, 0.1), (0.5, 0.1)]}
    retrained = {"a": [(0.9, 0.5), (0.9, 0.5)]}
    kinds = _kinds(random, retrained)
    v = bench.verdict(kinds, [0, 1])
    assert v["auroc"]["met"] and not v["met"]  # the gain is there, the seeds are not
    bench.report({"m": kinds}, [0, 1])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("m AUROC") or x.startswith("m AP")]
    assert len(lines) == 2 and all("UNDECIDED (2 of 3 seeds)" in x for x in lines)


def test_report_prints_met_and_not_met(capsys):
    random = {"a": [(0.5, 0.2)] * 3}
    retrained = {"a": [(0.6, 0.1)] * 3}
    bench.report({"m": _kinds(random, retrained)}, [0, 1, 2])
    out = capsys.readouterr().out
    assert "m AUROC 0.500+-0.000 -> 0.600+-0.000 (gain +0.100+-0.000; 1/1 systems improve): MET" in out
    assert "m AP    0.200+-0.000 -> 0.100+-0.000 (gain -0.100+-0.000; 0/1 systems improve): NOT MET" in out


def test_a_system_missing_for_one_seed_is_refused():
    random = {"a": [(0.5, 0.2)] * 3, "b": [(0.5, 0.2)] * 3}
    retrained = {"a": [(0.6, 0.1)] * 3, "b": [(0.6, 0.1)] * 3}
    kinds = _kinds(random, retrained)
    del kinds["retrained"][2]["b"]
    with pytest.raises(SystemExit, match=r"\['b'\] are missing"):
        bench.verdict(kinds, [0, 1, 2])


def test_a_gain_under_two_standard_errors_is_marked_as_noise(capsys):
    # AP gains +0.03, -0.01, +0.01: mean 0.01, sd 0.02, standard error 0.0115 -> 0.01 < 0.023: noise
    random = {"a": [(0.5, 0.10), (0.5, 0.10), (0.5, 0.10)]}
    retrained = {"a": [(0.6, 0.13), (0.61, 0.09), (0.62, 0.11)]}
    bench.report({"m": _kinds(random, retrained)}, [0, 1, 2])
    out = capsys.readouterr().out
    ap = next(x for x in out.splitlines() if x.startswith("m AP"))
    auroc = next(x for x in out.splitlines() if x.startswith("m AUROC"))
    assert ap.endswith("MET (within seed noise)") and auroc.endswith(": MET")
