"""The simulated expert of ``fmb review`` on the default survey: interesting objects found in the first N
inspected, with active learning (astronomaly's NeighbourScore) and without it (the plain fused ranking).

Runs ``fmb run --model baseline`` with three detectors (iforest, knn, lof; every modality: 9 systems) on the
default synthetic survey (2000 objects, seed 0; reused when the output folders exist), then
``fmb review --simulate --budget N`` on them, and prints both numbers and their ratio (goal: >= 1.5x).
Run:
    python bench/bench_review.py [--out bench-review] [--budget 100] [--dataset synthetic] [--top 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DETECTORS = ("iforest", "knn", "lof")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-review")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    runs = []
    for det in DETECTORS:
        run = out / f"baseline__{det}"
        if not (run / "results.json").exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fmb.cli",
                    "run",
                    "--model",
                    "baseline",
                    "--detector",
                    det,
                    "--dataset",
                    a.dataset,
                    "--output",
                    str(run),
                    "-q",
                    "--no-report",
                ],
                check=True,
            )
        runs.append(str(run))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fmb.cli",
            "review",
            "--simulate",
            *runs,
            "--budget",
            str(a.budget),
            "--top",
            str(a.top),
            "--seed",
            str(a.seed),
            "--out",
            str(out / "review"),
        ],
        check=True,
    )
    res = json.loads((out / "review" / "simulation.json").read_text())
    ratio = f"{res['ratio']:.2f}x" if res["ratio"] is not None else "n/a (none found without)"
    print(
        f"dataset {a.dataset}, {len(res['systems'])} systems, queue {res['queue_length']} objects "
        f"({res['interesting_in_queue']} interesting)"
    )
    print(
        f"interesting in the first {res['inspected']} inspected: active learning {res['found_active']}, "
        f"plain fused ranking {res['found_plain']}, ratio {ratio}"
    )


if __name__ == "__main__":
    main()
