"""Does retraining pay? Random init vs retrained, each model's small size, on the held-out split.

For each model (astroclip size=small, astropt size=001M, aion size=tiny) and each seed: ``fmb retrain MODEL``
from random weights of that seed on ``synthetic:split=train`` (additional objects, disjoint from the survey),
then ``fmb run`` on ``synthetic:split=test`` (the default survey's objects) with the random weights of that
seed and with the retrained weights, with a fixed set of detectors (iforest and knn on every output;
mismatch for astroclip, whose retraining is what gives it a shared image-spectrum space). Everything goes
through the CLI, so the provenance and overlap checks of a user's run are what is measured.

Prints, per model, AUROC and AP per system (random | retrained | gain) as mean +- sd over the seeds, the mean
per-class AUROC gain (class vs normal objects) and the verdict of the issue-16 criterion: the mean over seeds of
the best-system AUROC and of its AP (both of the retrained model) above the random init's.

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
        "retrain": ["--model", "astropt:size=001M", "--max-steps", "40", "--eval-every", "20", "--warmup-steps", "5"],
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
        for name, kinds in table.items():
            report({name: kinds}, sorted(kinds["random"]))
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


def report(table: dict, seeds: list[int]) -> dict:
    verdicts = {}
    for name, kinds in table.items():
        systems = sorted(set(kinds["random"][seeds[0]]) & set(kinds["retrained"][seeds[0]]))
        print(f"\n## {name} (mean +- sd over seeds {seeds}; held-out split)")
        print(
            f"{'system':22s} {'AUROC random':>15s} {'retrained':>15s} {'gain':>15s}  {'AP random':>15s} "
            f"{'retrained':>15s} {'gain':>15s}"
        )
        best = {"random": [], "retrained": []}
        for s in systems:
            row = {}
            for metric in ("auroc", "average_precision"):
                r = [kinds["random"][k][s][metric] for k in seeds]
                t = [kinds["retrained"][k][s][metric] for k in seeds]
                row[metric] = (r, t, [b - a for a, b in zip(r, t)])
            a, p = row["auroc"], row["average_precision"]
            print(
                f"{s:22s} {ms(a[0]):>15s} {ms(a[1]):>15s} {ms(a[2]):>15s}  {ms(p[0]):>15s} {ms(p[1]):>15s} "
                f"{ms(p[2]):>15s}"
            )
        for kind in best:
            for k in seeds:
                top = max(systems, key=lambda s: kinds[kind][k][s]["auroc"])
                best[kind].append((kinds[kind][k][top]["auroc"], kinds[kind][k][top]["average_precision"]))
        # per-class AUROC gain, averaged over systems and seeds
        classes = sorted({c for k in seeds for s in systems for c in kinds["random"][k][s].get("per_class", {})})
        print("per-class AUROC vs normal, mean over systems and seeds: random -> retrained (gain)")
        for c in classes:
            r = [kinds["random"][k][s]["per_class"][c]["auroc_vs_normal"] for k in seeds for s in systems]
            t = [kinds["retrained"][k][s]["per_class"][c]["auroc_vs_normal"] for k in seeds for s in systems]
            mr, mt = statistics.mean(r), statistics.mean(t)
            print(f"  {c:12s} {mr:.3f} -> {mt:.3f} ({mt - mr:+.3f})")
        mean_sys = {
            kind: tuple(
                statistics.mean(statistics.mean(kinds[kind][k][s][m] for s in systems) for k in seeds)
                for m in ("auroc", "average_precision")
            )
            for kind in best
        }
        br = [statistics.mean(x[i] for x in best["random"]) for i in (0, 1)]
        bt = [statistics.mean(x[i] for x in best["retrained"]) for i in (0, 1)]
        ok = bt[0] > br[0] and bt[1] > br[1]
        print(
            f"best system per seed: AUROC {br[0]:.3f} -> {bt[0]:.3f}, AP {br[1]:.3f} -> {bt[1]:.3f}; "
            f"mean over systems: AUROC {mean_sys['random'][0]:.3f} -> {mean_sys['retrained'][0]:.3f}, "
            f"AP {mean_sys['random'][1]:.3f} -> {mean_sys['retrained'][1]:.3f}: "
            f"{'RETRAINED BEATS RANDOM' if ok else 'retrained does NOT beat random'}"
        )
        verdicts[name] = {"best_random": br, "best_retrained": bt, "mean_systems": mean_sys, "beats": ok}
    return verdicts


if __name__ == "__main__":
    main()
