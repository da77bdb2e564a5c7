"""Streaming embedding: peak memory vs data set size, and throughput with prefetching workers.

1. Peak RSS while embedding 2,000 vs 20,000 objects of the synthetic survey with the baseline model
   (target: bounded, < 1.2x growth). Each size runs in a fresh child process; peak RSS comes from
   resource.getrusage in the child. The data set is generated first, in its own child, so the figure
   is the embedding's (stream batches -> model -> shard files), not the generator's.
2. Throughput (objects/s) embedding the same objects with --workers 0 (inline), 1 and 2.

The 20,000-object data set is ~2.5 GB of shards and takes minutes to generate the first time; it is
kept in --home (default: a folder under the system temp dir) for later runs.
Run: python bench/bench_stream.py [--sizes 2000 20000] [--workers 0 1 2] [--batch-size 64] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_GROWTH = 1.2

PREPARE = r"""
import sys, time
from fmb.datasets.synthetic import open_dataset
t0 = time.perf_counter()
open_dataset(size=int(sys.argv[1])).prepare()
print(time.perf_counter() - t0)
"""

CHILD = r"""
import json, resource, sys, time
from fmb.plugins import registry
from fmb.protocol.embed import embed_dataset
from fmb.protocol.run import RunConfig, load_model, open_dataset

size, workers, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
reg = registry()
ds = open_dataset(reg, "synthetic", {"size": size})
model = load_model(reg, RunConfig(model="baseline", detector="none"), "cpu")
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0, c0 = time.perf_counter(), time.process_time()
res = embed_dataset(model, ds, batch_size=batch, workers=workers)
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
assert res.built_shards and res.reused_shards == 0
print(json.dumps(dict(rows=size, seconds=dt, cpu_s=cpu, per_s=size / dt, rss_before_mb=rss0,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      shards=res.built_shards)))
"""


def child(code: str, args: list[str], home: Path) -> str:
    """Run ``code`` in a fresh interpreter; a fresh embedding cache, the shared data set cache."""
    shutil.rmtree(home / "embeddings", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "FMB_HOME": str(home)},
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--throughput-size", type=int, default=2000, help="objects per throughput run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "fmb-bench-stream")
    args = ap.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    for size in sorted({*args.sizes, args.throughput_size}):
        secs = float(child(PREPARE, [str(size)], args.home))
        print(f"data set of {size:,} objects ready ({secs:.1f} s)")

    peaks = {}
    for size in args.sizes:
        r = json.loads(child(CHILD, [str(size), "1", str(args.batch_size)], args.home))
        peaks[size] = r["peak_rss_mb"]
        print(
            f"embed {size:>6,} objects (workers 1): {r['seconds']:.1f} s, {r['per_s']:.0f} objects/s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (after start-up {r['rss_before_mb']:.0f} MB), "
            f"{r['shards']} shard(s)"
        )
    if len(peaks) >= 2:
        small, big = min(peaks), max(peaks)
        g = peaks[big] / peaks[small]
        print(
            f"peak RSS {big:,} vs {small:,} objects: {g:.2f}x (target < {TARGET_GROWTH}x): "
            f"{'OK' if g < TARGET_GROWTH else 'OVER TARGET'}"
        )

    rates = {}
    for w in args.workers:
        r = json.loads(child(CHILD, [str(args.throughput_size), str(w), str(args.batch_size)], args.home))
        rates[w] = r["per_s"]
        print(
            f"throughput, {args.throughput_size:,} objects, workers {w}: {r['per_s']:.0f} objects/s "
            f"({r['seconds']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {os.cpu_count()} cores)"
        )
    if 1 in rates and 2 in rates:
        print(f"workers 2 vs 1: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
