"""`fmb report` time: the 2-D map computed afresh (the baseline, as before the map cache) against a report
that finds its map in the cache (FMB_HOME/maps, :func:`fmb.report.embedmap.project_cached`).

Makes (or reuses) a 4-run matrix on the default synthetic survey (2,000 objects): ``baseline`` x {iforest,
knn} x seeds {0, 1}, ``--no-report``; then times, in this process:
  1. the report of one run with a PCA map, and with a UMAP map (when umap-learn is installed);
  2. the combined report of the 4-run matrix (auto map: UMAP where installed);
each (a) without the map cache (``project`` called directly: the baseline), (b) first run with the cache
(maps cleared: the 4 runs of one model share one map), (c) re-run with the maps cached. Prints seconds, the
map step's seconds and the ratio to the baseline, with the machine load (``uptime``).
Run:
    python bench/bench_report.py [--out bench-report] [--dataset synthetic] [--skip-umap]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def load() -> str:
    return os.getloadavg().__repr__()


def timed(label: str, fn) -> tuple[float, float]:
    """(total seconds, embedding-map seconds) of ``fn(reporter)``, from the report's own step lines."""
    from rich.console import Console

    from fmb.reporting import Reporter

    buf = io.StringIO()
    t0 = time.perf_counter()
    fn(Reporter(console=Console(file=buf, force_terminal=False)))
    total = time.perf_counter() - t0
    maps = sum(float(m) for m in re.findall(r"report: embedding map[^\n]*: ([\d.]+) s \(", buf.getvalue()))
    print(f"  {label:<44} {total:7.1f} s   (map steps {maps:6.1f} s)   load {load()}", flush=True)
    return total, maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-report")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--skip-umap", action="store_true")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    matrix = out / "matrix"
    if not (matrix / "leaderboard.csv").exists():
        cmd = [sys.executable, "-m", "fmb.cli", "run", "--model", "baseline", "--detector", "iforest"]
        cmd += ["--detector", "knn", "--seed", "0", "--seed", "1", "--dataset", a.dataset, "--output", str(matrix)]
        subprocess.run([*cmd, "-q", "--no-report"], check=True)
    runs = sorted(p for p in matrix.iterdir() if (p / "results.json").exists())
    assert len(runs) == 4, runs

    from fmb.home import fmb_home
    from fmb.report import embedmap as E
    from fmb.report.build import build_report

    maps_dir = fmb_home() / E.MAPS_DIR
    cached = E.project_cached

    def uncached(X, ids, method, seed=0, cache_key=None, output=""):
        return E.project(X, method, seed), False

    methods = ["pca"] + ([] if a.skip_umap or not E.umap_available() else ["umap"])
    print(f"fmb report on {a.dataset} ({runs[0].name} ...); maps in {maps_dir}")
    cases = [(f"one run, {m.upper()} map", [runs[0]], m) for m in methods]
    cases.append(("4-run matrix, auto map", [matrix], "auto"))
    rows = []
    for label, paths, method in cases:
        print(label)
        html = out / f"report-{len(paths)}-{method}.html"

        def make(rep, paths=paths, method=method, html=html):
            return build_report(paths, html, embedding_map=method, reporter=rep)

        E.project_cached = uncached  # the baseline: every map computed, as before the cache
        try:
            base = timed("baseline (no map cache)", make)
        finally:
            E.project_cached = cached
        shutil.rmtree(maps_dir, ignore_errors=True)
        first = timed("with the cache, first run (maps cleared)", make)
        again = timed("with the cache, re-run (maps cached)", make)
        rows.append((label, base, first, again))
    print("\nsummary (seconds; ratio = time / baseline)")
    print(f"{'case':<28} {'baseline':>9} {'first':>9} {'re-run':>9} {'ratio first':>12} {'ratio re-run':>13}")
    for label, base, first, again in rows:
        print(
            f"{label:<28} {base[0]:9.1f} {first[0]:9.1f} {again[0]:9.1f} "
            f"{first[0] / base[0]:12.2f} {again[0] / base[0]:13.2f}"
        )


if __name__ == "__main__":
    main()
