"""The synthetic survey: generation time and streaming memory.

Targets: generating 2,000 objects (first run, chunks of 250) in <= 15 s; peak RSS while iterating
20,000 objects < 1.2x the peak while iterating 2,000 (memory bounded by the chunk size).
Each size runs in a fresh child process with its own empty FMB_HOME; peak RSS comes from
resource.getrusage in the child. The 20,000-object run generates ~2.5 GB of shards (about 2 min).
The machine has 2 cores: a wall time far above CPU time / 2 means other load; rerun when idle.
Run: python bench/bench_synthetic.py [--sizes 2000 20000] [--chunk-size 250] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

TARGET_GEN_S = 15.0
TARGET_GROWTH = 1.2

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from fmb.datasets.synthetic import open_dataset
from fmb.datasets.synthetic.templates import load_templates
load_templates()
t_import = time.perf_counter() - t0
size, chunk = int(sys.argv[1]), int(sys.argv[2])
ds = open_dataset(size=size, chunk_size=chunk)
r1 = resource.getrusage(resource.RUSAGE_SELF); t1 = time.perf_counter(); n = 0
for b in ds.iter_batches(256):
    n += b.num_rows
t_first = time.perf_counter() - t1
r2 = resource.getrusage(resource.RUSAGE_SELF)
cpu_first = (r2.ru_utime - r1.ru_utime) + (r2.ru_stime - r1.ru_stime)
rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t2 = time.perf_counter()
for b in ds.iter_batches(256):
    pass
t_cached = time.perf_counter() - t2
print(json.dumps(dict(rows=n, import_s=t_import, first_s=t_first, first_cpu_s=cpu_first, cached_s=t_cached,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      peak_rss_first_mb=rss_first, shards=ds.generated_shards,
                      cache_mb=sum(p.stat().st_size for p in ds.cache_path.iterdir()) / 1e6)))
"""


def run_size(size: int, chunk: int, keep: bool) -> dict:
    home = tempfile.mkdtemp(prefix=f"fmb-bench-synth-{size}-")
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(size), str(chunk)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "FMB_HOME": home},
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--chunk-size", type=int, default=250)
    ap.add_argument("--keep", action="store_true", help="keep the temporary FMB_HOME folders")
    args = ap.parse_args()
    results = {}
    for size in args.sizes:
        r = results[size] = run_size(size, args.chunk_size, args.keep)
        per_obj = r["first_s"] / r["rows"] * 1000
        print(
            f"{size:>7} objects: import {r['import_s']:.2f} s, generate+stream {r['first_s']:.2f} s "
            f"({per_obj:.2f} ms/object; CPU {r['first_cpu_s']:.1f} s), cached {r['cached_s']:.2f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB, cache {r['cache_mb']:.0f} MB"
        )
    if 2000 in results:
        t = results[2000]["first_s"]
        print(
            f"generation of 2,000 objects: {t:.2f} s (target <= {TARGET_GEN_S} s, "
            f"ratio {t / TARGET_GEN_S:.2f}): {'OK' if t <= TARGET_GEN_S else 'OVER TARGET'}"
        )
    if len(args.sizes) >= 2:
        small, big = min(args.sizes), max(args.sizes)
        g = results[big]["peak_rss_mb"] / results[small]["peak_rss_mb"]
        print(
            f"peak RSS {big:,} vs {small:,} objects: {g:.2f}x (target < {TARGET_GROWTH}x, ratio "
            f"{g / TARGET_GROWTH:.2f}): {'OK' if g < TARGET_GROWTH else 'OVER TARGET'}"
        )


if __name__ == "__main__":
    main()
