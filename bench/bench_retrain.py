"""Does retraining pay? Random init vs retrained, each model's small size, on the held-out split.

For each model (astroclip size=small, astropt size=001M, aion size=tiny) and each seed: ``fmb retrain MODEL``
from random weights of that seed on ``synthetic:split=train`` (additional objects, disjoint from the survey),
then ``fmb run`` on ``synthetic:split=test`` (the default survey's objects) with the random weights of that
seed and with the retrained weights, with a fixed set of detectors (iforest and knn on every output;
mismatch for astroclip, whose retraining is what gives it a shared image-spectrum space). Everything goes
through the CLI, so the provenance and overlap checks of a user's run are what is measured.

Prints, per model, AUROC and AP per system (random | retrained | gain) as mean +- sd over the seeds, the mean
per-class AUROC gain (class vs normal objects) and one line per metric with the verdict of the issue-16
criterion (``MODEL AUROC ... MET`` / ``NOT MET``; :func:`verdict`): for each seed the mean over the SAME systems
of the retrained model's metric minus the random init's; MET when the mean of that gain over the seeds (at least
3) is above 0. The best system per side is printed for information only (it compares maxima of noisy systems).

Run: python bench/bench_retrain.py [--seeds 0 1 2] [--train-size 2000] [--work /tmp/fmb-bench-retrain]
     [--models astroclip astropt aion] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: model spec for fmb run, and the retrain options of its small size (few steps: a 2-core machine)
MODELS: dict[str, dict] = {
    "astroclip": {
        "spec": "astroclip:size=small",
        "retrain": [
            "--size",
            "small",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--warmup-steps",
            "5",
            "--lr",
            "1e-3",
            "--patience",
            "0",
        ],
        "detectors": ["iforest", "knn", "mismatch"],
    },
    "astropt": {
        "spec": "astropt:size=001M",
        # 100 steps: after 40 the embedding has collapsed onto one direction (effective rank 33 -> 1.4, the
        # next-token loss's first phase) and the random spectrum embedding's eelg signal is lost; by 100 steps
        # AUROC is well above the random init's, AP only within noise (docs/retraining.md, "Why AstroPT's 40 ...")
        "retrain": [
            "--model",
            "astropt:size=001M",
            "--max-steps",
            "100",
            "--eval-every",
            "50",
            "--warmup-steps",
            "10",
            "--patience",
            "0",
        ],
        "detectors": ["iforest", "knn"],
    },
    "aion": {
        "spec": "aion:size=tiny",
        # --part encoder: AION's transformer (the adapter alone leaves the random codec and transformer as they were)
        "retrain": [
            "--size",
            "tiny",
            "--part",
            "encoder",
            # cross-modal prediction alone lowered the image systems (it keeps only what predicts the spectrum)
            "--objective",
            "cross+masked",
            "--epochs",
            "1",
            "--max-steps",
            "40",
            "--eval-every",
            "20",
            "--batch-size",
            "8",
            "--lr",
            "3e-4",
            "--warmup-steps",
            "5",
        ],
        "detectors": ["iforest", "knn"],
    },
}


def sh(cmd: list[str], log: Path) -> None:
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    print(f"  [{time.perf_counter() - t0:6.1f}s] {shlex.join(cmd[:4])} ...", flush=True)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {shlex.join(cmd)}; see {log}")


def results(folder: Path) -> dict[str, dict]:
    """``detector/output`` -> metrics of every results.json under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("results.json")):
        res = json.loads(p.read_text())
        det = res["config"]["detector"]
        for mod, entry in res["modalities"].items():
            if entry.get("metrics"):
                out[f"{det}/{mod}"] = entry["metrics"] | {"_weights": res["model"]["weights"]}
    return out


def ms(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.3f}+-{sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--size", type=int, default=2000, help="survey (= held-out) objects")
    ap.add_argument("--train-size", type=int, default=1000, help="additional training objects")
    ap.add_argument("--train-survey-size", type=int, default=0, help="size= of the train split (default --size)")
    ap.add_argument("--max-train-objects", type=int, default=0, help="retrain on the first N (0: all)")
    ap.add_argument("--work", default="/tmp/fmb-bench-retrain")
    ap.add_argument("--json", default="")
    ap.add_argument("--report-only", action="store_true", help="print the table of the finished runs in --work")
    args = ap.parse_args()
    args_work = Path(args.work)
    if args.report_only:
        table: dict = {}
        for name in args.models:
            for seed in args.seeds:
                got = {k: results(args_work / "runs" / name / f"{k}-seed{seed}") for k in ("random", "retrained")}
                if all(got.values()):
                    for k, v in got.items():
                        table.setdefault(name, {}).setdefault(k, {})[seed] = v
        print(f"# load: {os.getloadavg()}; finished runs in {args.work}")
        verdicts = {}
        for name, kinds in table.items():
            done = sorted(kinds["random"])
            if done != sorted(args.seeds):
                print(f"# {name}: only seeds {done} of {args.seeds} are finished")
            verdicts |= report({name: kinds}, done)
        if args.json:
            Path(args.json).write_text(json.dumps({"table": table, "verdicts": verdicts}, indent=1, default=str))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    train_ds = f"synthetic:size={args.train_survey_size or args.size},split=train,train_size={args.train_size}"
    test_ds = f"synthetic:size={args.size},split=test"
    print(f"# load: {os.getloadavg()}; train {train_ds}; held-out {test_ds}; log {log}", flush=True)
    table: dict = {}
    for name in args.models:
        m = MODELS[name]
        for seed in args.seeds:
            print(f"# {name} seed {seed}", flush=True)
            rt = work / "retrained" / name / f"seed{seed}"
            if not (rt / "retrain.json").exists():
                sh(
                    ["fmb", "retrain", name, "--dataset", train_ds, "--weights", "random", "--seed", str(seed)]
                    + m["retrain"]
                    + ["--max-objects", str(args.max_train_objects)]
                    + ["--output", str(rt), "--quiet"],
                    log,
                )
            for kind in ("random", "retrained"):
                out = work / "runs" / name / f"{kind}-seed{seed}"
                if not any(out.rglob("results.json")):
                    spec, weights = m["spec"], "random"
                    if kind == "retrained":
                        if m.get("adapter"):
                            spec += f",adapter={rt}"
                        else:
                            weights = str(rt)
                    cmd = ["fmb", "run", "--model", spec, "--weights", weights, "--seed", str(seed)]
                    cmd += ["--dataset", test_ds, "--output", str(out), "--no-report", "--quiet"]
                    for d in m["detectors"]:
                        cmd += ["--detector", d]
                    sh(cmd, log)
                table.setdefault(name, {}).setdefault(kind, {})[seed] = results(out)
    print(f"# load at the end: {os.getloadavg()}")
    verdicts = report(table, args.seeds)
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table, "verdicts": verdicts}, indent=1, default=str))


METRICS = (("auroc", "AUROC"), ("average_precision", "AP"))


def systems_of(kinds: dict, seeds: list[int]) -> list[str]:
    """The systems scored for every seed with both the random and the retrained weights (the verdict compares
    the SAME systems before and after); exits with one line when a seed lacks one the others have."""
    sets = [set(kinds[kind][k]) for kind in ("random", "retrained") for k in seeds]
    common, every = set.intersection(*sets), set.union(*sets)
    if common != every:
        sys.exit(f"bench_retrain: systems {sorted(every - common)} are missing for some seed or weights; rerun them")
    return sorted(common)


def verdict(kinds: dict, seeds: list[int]) -> dict:
    """The issue-16 criterion for one model: does the retrained model beat its random init on the held-out split?

    Summary (the verdict's): for each seed, the mean over the same systems (every detector x output the bench
    runs) of the metric, for the random and the retrained weights; the gain per seed is their difference, and a
    metric is MET when the mean gain over the seeds is above 0. The same systems on both sides make it a paired
    comparison; a best system per side (reported too, as ``best``) would compare the maximum of noisy
    systems, possibly different ones, and reward the side with more variance. Returns per metric
    ``{random, retrained, gain, gain_sd, met, wins}`` (``wins``: systems whose mean over seeds improved) and
    ``best`` (the mean over seeds of the per-seed best system's AUROC and its AP, for information).
    """
    systems = systems_of(kinds, seeds)
    out: dict = {"systems": systems, "seeds": list(seeds)}
    for metric, _ in METRICS:
        per_seed = {
            kind: [statistics.mean(kinds[kind][k][s][metric] for s in systems) for k in seeds]
            for kind in ("random", "retrained")
        }
        gains = [b - a for a, b in zip(per_seed["random"], per_seed["retrained"])]
        wins = sum(
            statistics.mean(kinds["retrained"][k][s][metric] for k in seeds)
            > statistics.mean(kinds["random"][k][s][metric] for k in seeds)
            for s in systems
        )
        out[metric] = {
            "random": statistics.mean(per_seed["random"]),
            "retrained": statistics.mean(per_seed["retrained"]),
            "random_sd": statistics.stdev(per_seed["random"]) if len(seeds) > 1 else 0.0,
            "retrained_sd": statistics.stdev(per_seed["retrained"]) if len(seeds) > 1 else 0.0,
            "gain": statistics.mean(gains),
            "gain_sd": statistics.stdev(gains) if len(seeds) > 1 else 0.0,
            "met": statistics.mean(gains) > 0,
            "wins": wins,
        }
    best = {}
    for kind in ("random", "retrained"):
        tops = [max(systems, key=lambda s: kinds[kind][k][s]["auroc"]) for k in seeds]
        best[kind] = [
            statistics.mean(kinds[kind][k][t][m] for k, t in zip(seeds, tops)) for m in ("auroc", "average_precision")
        ]
    out["best"] = best
    out["met"] = all(out[m]["met"] for m, _ in METRICS) and len(seeds) >= MIN_SEEDS
    return out


def noise(gain: float, sd: float, n: int) -> str:
    """`` (within seed noise)`` when the mean gain is under two standard errors (``2 sd / sqrt(n)``) of the
    per-seed gains, else ``""``: a verdict the next seeds could reverse is marked as such."""
    return " (within seed noise)" if n > 1 and abs(gain) < 2 * sd / n**0.5 else ""


#: seeds the issue-16 criterion asks for; with fewer the verdict is UNDECIDED whatever the gain
MIN_SEEDS = 3


def status(met: bool, n_seeds: int) -> str:
    """``MET`` / ``NOT MET``, or ``UNDECIDED`` with fewer than :data:`MIN_SEEDS` seeds."""
    if n_seeds < MIN_SEEDS:
        return f"UNDECIDED ({n_seeds} of {MIN_SEEDS} seeds)"
    return "MET" if met else "NOT MET"


def report(table: dict, seeds: list[int]) -> dict:
    """Print each model's table, per-class gains and its MET / NOT MET lines; returns the verdicts."""
    verdicts = {}
    for name, kinds in table.items():
        systems = systems_of(kinds, seeds)
        print(f"\n## {name} (mean +- sd over seeds {seeds}; held-out split)")
        print(
            f"{'system':22s} {'AUROC random':>15s} {'retrained':>15s} {'gain':>15s}  {'AP random':>15s} "
            f"{'retrained':>15s} {'gain':>15s}"
        )
        for s in systems:
            row = {}
            for metric, _ in METRICS:
                r = [kinds["random"][k][s][metric] for k in seeds]
                t = [kinds["retrained"][k][s][metric] for k in seeds]
                row[metric] = (r, t, [b - a for a, b in zip(r, t)])
            a, p = row["auroc"], row["average_precision"]
            print(
                f"{s:22s} {ms(a[0]):>15s} {ms(a[1]):>15s} {ms(a[2]):>15s}  {ms(p[0]):>15s} {ms(p[1]):>15s} "
                f"{ms(p[2]):>15s}"
            )
        # per-class AUROC gain, averaged over systems and seeds
        classes = sorted({c for k in seeds for s in systems for c in kinds["random"][k][s].get("per_class", {})})
        print("per-class AUROC vs normal, mean over systems and seeds: random -> retrained (gain)")
        for c in classes:
            r = [kinds["random"][k][s]["per_class"][c]["auroc_vs_normal"] for k in seeds for s in systems]
            t = [kinds["retrained"][k][s]["per_class"][c]["auroc_vs_normal"] for k in seeds for s in systems]
            mr, mt = statistics.mean(r), statistics.mean(t)
            print(f"  {c:12s} {mr:.3f} -> {mt:.3f} ({mt - mr:+.3f})")
        v = verdict(kinds, seeds)
        br, bt = v["best"]["random"], v["best"]["retrained"]
        print(
            f"(for information, not the verdict: best system per seed, AUROC {br[0]:.3f} -> {bt[0]:.3f}, "
            f"its AP {br[1]:.3f} -> {bt[1]:.3f})"
        )
        print(f"verdict: mean over the same {len(systems)} systems per seed, then mean +- sd over seeds {seeds}")
        for metric, label in METRICS:
            m = v[metric]
            print(
                f"{name} {label:5s} {m['random']:.3f}+-{m['random_sd']:.3f} -> {m['retrained']:.3f}+-"
                f"{m['retrained_sd']:.3f} (gain {m['gain']:+.3f}+-{m['gain_sd']:.3f}; {m['wins']}/{len(systems)} "
                f"systems improve): {status(m['met'], len(seeds))}{noise(m['gain'], m['gain_sd'], len(seeds))}"
            )
        verdicts[name] = v
    return verdicts


if __name__ == "__main__":
    main()
