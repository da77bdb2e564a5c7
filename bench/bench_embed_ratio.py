"""``fmb embed`` / bare forward loop, before and after, side by side in one run.

Runs the embed benches (bench_astroclip.py small, bench_astropt.py 001M, bench_aion.py tiny) once per
source tree, alternating the trees (A B A B ...) so that the load of a shared machine hits both
alike, and prints each model's throughput ratio per tree: the median over ``--rounds`` alternations
and its range (each bench's own figure is itself taken over interleaved repeats: bench_astropt.py's is
the median of its rounds, the others' the ratio of best times). The bench scripts are the same for both
trees (this folder's); only the ``fmb`` and plugin packages imported differ (``PYTHONPATH`` of each
tree's ``*/src``). Target: ratio >= 0.9.

    git worktree add --detach /tmp/fmb-main main
    python bench/bench_embed_ratio.py --before /tmp/fmb-main [--after .] [--rounds 2] [--workers N]

Each bench prints ``RATIO <size> <value>``; a bench that fails prints its last lines and counts as
missing. ``uptime``'s load is printed before and after (the figures are noisy on a loaded machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "astroclip small": ["bench_astroclip.py", "--official-batches", "0", "--repeat", "2"],
    "astropt 001M": ["bench_astropt.py", "--big-batch", "0", "--rounds", "3"],
    "aion tiny": ["bench_aion.py", "--size", "tiny", "--n", "64", "--batch", "16", "--repeat", "2"],
}
PACKAGES = ("fmb-core", "fmb-astropt", "fmb-astroclip", "fmb-aion")


def load() -> str:
    return os.getloadavg().__repr__()


def run(tree: Path, args: list[str], workers: int | None) -> float | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / p / "src") for p in PACKAGES)}
    env["HF_HUB_OFFLINE"] = "1"
    extra = ["--workers", str(workers)] if workers is not None else []
    cmd = [sys.executable, str(HERE / args[0]), *args[1:], *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = r.stdout.splitlines()
    for line in lines:  # other figures a bench prints beside its ratio (bench_astropt.py: CPU, forward only)
        if line.split(" ", 1)[0].endswith("RATIO") and not line.startswith("RATIO "):
            print(f"    {line}")
    for line in lines:
        if line.startswith("RATIO "):
            return float(line.split()[-1])
    print(f"  {tree}: {args[0]} failed (rc {r.returncode}): {(r.stdout + r.stderr).strip().splitlines()[-3:]}")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path, help="source tree of the baseline (e.g. a worktree of main)")
    ap.add_argument("--after", default=HERE.parent, type=Path, help="source tree measured (default: this one)")
    ap.add_argument("--rounds", type=int, default=1, help="alternations per bench (median ratio per tree)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed in both trees")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHES))
    a = ap.parse_args()
    names = [n for n in BENCHES if not a.only or n in a.only.split(",")]
    t0 = time.perf_counter()
    print(f"load before {load()}; before={a.before.resolve()} after={a.after.resolve()} workers={a.workers}")
    got: dict[tuple[str, str], list[float]] = {}
    for name in names:
        for _ in range(a.rounds):
            for which, tree in (("before", a.before), ("after", a.after)):
                r = run(tree.resolve(), BENCHES[name], a.workers)
                if r is not None:
                    got.setdefault((name, which), []).append(r)
                print(f"  {name:16s} {which:6s} ratio {r if r is None else round(r, 3)}  (load {load()})", flush=True)
    print(f"\n{'model':16s} {'before':>22s} {'after':>22s}   (fmb embed / bare loop throughput, median [range])")
    for name in names:
        cells = []
        for which in ("before", "after"):
            v = got.get((name, which))
            cells.append("-" if not v else f"{statistics.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]")
        print(f"{name:16s} {cells[0]:>22s} {cells[1]:>22s}")
    print(f"load after {load()}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
