"""Detector scaling: detect time and peak RSS for N random 256-d embeddings per detector.

Each (detector, N) runs in a fresh subprocess (so peak RSS, from ``resource.getrusage``, is that
fit's alone) on seeded low-rank 256-d embeddings. Printed per detector: seconds and peak RSS per
N, and the growth exponent log(t2/t1)/log(N2/N1) between the two largest N (goal <= 1.2 for knn
and lof from 100k to 1M). For knn and lof the exact search (``ann_threshold`` above N) is the
baseline of the same N where it is affordable (``--exact-max-n``): the ratio exact/HNSW is printed.

Not a test; run on demand (1M rows take many minutes per detector on a 2-core machine):
    python bench/bench_scale.py --max-n 20000 --detectors iforest,knn,lof,ecod,nf
    python bench/bench_scale.py            # N = 10k, 100k, 1M
Thread pools follow FMB_THREADS (fmb.threads).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from fmb.plugins import registry
from fmb.protocol.run import make_detector
n, spec = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
X = (np.tanh(rng.standard_normal((n, 16), np.float32) @ rng.standard_normal((16, 256), np.float32) / 4)
     + 0.3 * rng.standard_normal((n, 256), np.float32))
from fmb.params import parse_spec
name, params = parse_spec(spec)
det = make_detector(registry(), name, params)
t = time.perf_counter()
s = det.fit_score(X, seed=0)
dt = time.perf_counter() - t
assert np.isfinite(s).all() and len(s) == n
print(json.dumps({"seconds": dt, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run(n: int, spec: str, timeout: float) -> dict | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), spec], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode:
        print(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--max-n", type=int, default=None, help="skip sizes above this")
    ap.add_argument("--detectors", default="iforest,knn,lof,ecod,nf")
    ap.add_argument("--exact-max-n", type=int, default=30000, help="run exact knn/lof up to this N")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per fit before giving up")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if a.max_n is None or int(s) <= a.max_n]
    if a.max_n and a.max_n not in sizes:
        sizes.append(a.max_n)
    for det in a.detectors.split(","):
        spec = f"{det}:ann_threshold=0" if det in ("knn", "lof") else det
        times = {}
        for n in sizes:
            r = run(n, spec, a.timeout)
            if r is None:
                print(f"{det:8s} N={n:>8d}  failed or over {a.timeout:.0f} s", flush=True)
                continue
            times[n] = r["seconds"]
            line = f"{det:8s} N={n:>8d}  {r['seconds']:9.2f} s  peak RSS {r['rss_gb']:.2f} GB"
            if det in ("knn", "lof") and n <= a.exact_max_n:
                e = run(n, f"{det}:ann_threshold={n + 1}", a.timeout)
                if e:
                    line += f"   exact {e['seconds']:9.2f} s  ratio exact/hnsw {e['seconds'] / r['seconds']:.2f}"
            print(line, flush=True)
        if len(times) >= 2:
            (n1, t1), (n2, t2) = sorted(times.items())[-2:]
            print(f"{det:8s} growth exponent {n1} -> {n2}: {math.log(t2 / t1) / math.log(n2 / n1):.2f}", flush=True)


if __name__ == "__main__":
    main()
