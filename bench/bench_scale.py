"""Detector scaling: detect time and peak RSS for N random 256-d embeddings per detector.

Each (detector, N) runs in a fresh subprocess (so peak RSS, from ``resource.getrusage``, is that
fit's alone) on seeded 256-d embeddings: ``--data lowrank`` (default: a 16-d latent through tanh plus
noise, like real embeddings) or ``--data gaussian`` (i.i.d. standard normal, intrinsic dimension 256: the
worst case for neighbour graphs, to measure their recall there). Printed per detector: seconds and peak RSS per
N, and the growth exponent log(t2/t1)/log(N2/N1) between the two largest N (goal <= 1.2 for knn
and lof from 100k to 1M); for knn and lof only between sizes that both used the approximate graph (below
``EXACT_BELOW`` = 2,000 rows they search exactly: such rows say "exact search", and no exponent is judged
across the two paths). For knn and lof the exact search (``ann_threshold`` above N) is the
baseline of the same N where it is affordable (``--exact-max-n``): the ratio exact/approximate is printed
(only where the approximate graph was built).

Goals (issue #18, printed as PASS/FAIL at the largest N): under 600 s and under 8 GB peak RSS per
detector; growth exponent <= 1.2 for knn and lof. knn/lof lines also print the recall@k the NN-descent
graph measured on its seeded sample (fmb.detectors.neighbours) and whether it was rebuilt. The load
average is printed with every line, and the fit's CPU time (all threads, ``time.process_time``) next
to its wall time: on a shared, loaded machine wall time says more about the other jobs than about the detector, so the
exponent is printed for both, and the exponent verdict is given for both (on a machine shared with
other jobs the CPU exponent is the honest one: wall time there grows with the others' load).

Not a test; run on demand (1M rows take many minutes per detector on a 2-core machine):
    python bench/bench_scale.py --max-n 20000 --detectors iforest,knn,lof,ecod,nf
    python bench/bench_scale.py --sizes 100000,1000000 --detectors nf
    python bench/bench_scale.py            # N = 10k, 100k, 1M
    python bench/bench_scale.py --detectors lof --sizes 100000,1000000 --profile   # + seconds per stage
Thread pools follow FMB_THREADS (fmb.threads).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

from fmb.detectors.neighbours import EXACT_BELOW

CHILD = r"""
import json, resource, sys, time
import numpy as np
from fmb.plugins import registry
from fmb.protocol.run import make_detector
n, spec, data, profile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
rng = np.random.default_rng(0)
W = rng.standard_normal((16, 256), np.float32)
X = np.empty((n, 256), np.float32)
for a in range(0, n, 65536):  # in chunks: the generator's temporaries stay small next to X itself
    b = min(n, a + 65536)
    if data == "gaussian":
        X[a:b] = rng.standard_normal((b - a, 256), np.float32)
        continue
    X[a:b] = np.tanh(rng.standard_normal((b - a, 16), np.float32) @ W / 4)
    X[a:b] += 0.3 * rng.standard_normal((b - a, 256), np.float32)
from fmb.params import parse_spec
stages = {}
if profile:  # time the stages of the fit where they are called (neighbours.py, pyod_adapter.py); the fit is unchanged
    import fmb.detectors.neighbours as nb, fmb.detectors.pyod_adapter as pa
    def timed(mod, attr):
        f = getattr(mod, attr, None)
        if f is None:  # an older tree without this stage
            return
        def g(*a, **k):
            t, c = time.perf_counter(), time.process_time()
            try:
                return f(*a, **k)
            finally:
                w, u, n = stages.get(attr, (0.0, 0.0, 0))
                stages[attr] = (w + time.perf_counter() - t, u + time.process_time() - c, n + 1)
        setattr(mod, attr, g)
    for attr in ("may_have_duplicate_rows", "unique_rows", "standardise"):
        timed(pa, attr)
    for attr in ("_memory_order", "huge_pages", "_exact_rows", "_nn_descent", "knn_scores", "lof_scores"):
        timed(nb, attr)
name, params = parse_spec(spec)
det = make_detector(registry(), name, params)
t, c = time.perf_counter(), time.process_time()
s = det.fit_score(X, seed=0)
dt, cpu = time.perf_counter() - t, time.process_time() - c
assert np.isfinite(s).all() and len(s) == n
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "rss_gb": rss, "stages": stages,
                  "details": getattr(det, "details_", {})}, default=str))
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every default and keeps the examples' lines."""


def on_approximate_path(r: dict) -> bool:
    """Whether a knn/lof fit used the approximate neighbour graph (NN-descent), from the ``neighbours`` details
    it recorded (``fmb.detectors.neighbours.ann_knn``: below ``EXACT_BELOW`` rows its index is exact)."""
    return "NNDescent" in str((r.get("details") or {}).get("neighbours", {}).get("index", ""))


#: the goals of issue #18 at the largest N: seconds, peak RSS (GB), growth exponent for knn and lof
GOAL_SECONDS, GOAL_RSS_GB, GOAL_EXPONENT = 600.0, 8.0, 1.2


def run(n: int, spec: str, timeout: float, data: str = "lowrank", profile: bool = False) -> dict | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), spec, data, str(int(profile))],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode:
        print(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Each (detector, N) fit runs in its own subprocess.",
        epilog=__doc__[__doc__.index("Not a test") :],
        formatter_class=_HelpFormatter,
    )
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N (rows)")
    ap.add_argument("--max-n", type=int, default=None, help="skip sizes above this (and add it as a size)")
    ap.add_argument(
        "--detectors",
        default="iforest,knn,lof,ecod,nf",
        help="comma-separated detector names (`fmb detectors`); knn and lof run with ann_threshold=0, i.e. the "
        f"approximate graph from N = {EXACT_BELOW} (below it they search exactly)",
    )
    ap.add_argument("--exact-max-n", type=int, default=30000, help="run exact knn/lof up to this N as a baseline")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per fit before giving up")
    ap.add_argument("--data", choices=("lowrank", "gaussian"), default="lowrank", help="embeddings to score")
    ap.add_argument(
        "--profile", action="store_true", help="print wall/CPU seconds of each stage of the fit (knn/lof stages)"
    )
    a = ap.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(",") if a.max_n is None or int(s) <= a.max_n)
    if a.max_n and a.max_n not in sizes:
        sizes.append(a.max_n)
    from fmb.threads import n_threads

    threads = f"{n_threads()} threads (FMB_THREADS={os.environ.get('FMB_THREADS', '')!r}, "
    threads += f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')!r}; the NN-descent build uses one)"
    head = f"bench_scale: N = {', '.join(map(str, sizes))} x 256 ({a.data}); {os.cpu_count()} CPUs; {threads}; {load()}"
    print(head, flush=True)
    verdicts = []
    for det in a.detectors.split(","):
        spec = f"{det}:ann_threshold=0" if det in ("knn", "lof") else det
        times, cpu, approx = {}, {}, {}
        for n in sizes:
            r = run(n, spec, a.timeout, a.data, a.profile)
            if r is None:
                print(f"{det:8s} N={n:>8d}  failed or over {a.timeout:.0f} s  ({load()})", flush=True)
                if n == sizes[-1]:
                    verdicts.append(f"FAIL {det}: N={n} did not finish within {a.timeout:.0f} s")
                continue
            times[n] = r["seconds"]
            cpu[n] = r["cpu_seconds"]
            approx[n] = det not in ("knn", "lof") or on_approximate_path(r)
            line = f"{det:8s} N={n:>8d}  {r['seconds']:9.2f} s  CPU {r['cpu_seconds']:9.2f} s"
            line += f"  peak RSS {r['rss_gb']:.2f} GB"
            nb = r.get("details", {}).get("neighbours")
            if det in ("knn", "lof") and not approx[n]:  # no graph was approximated: nothing to compare
                line += f"  exact search (N < {EXACT_BELOW}: the approximate graph is not used)"
            elif nb:
                line += f"  approximate: recall@k {nb['recall_at_k']:.3f}"
                if "iterations" in nb:
                    line += f" (K {nb['K']}, {nb['iterations']} iterations{', rebuilt' if nb['rebuilt'] else ''}"
                    line += f"{', huge pages' if nb.get('huge_pages') else ''})"
            if det in ("knn", "lof") and approx[n] and n <= a.exact_max_n:
                e = run(n, f"{det}:ann_threshold={n + 1}", a.timeout, a.data)
                if e:
                    line += f"   exact {e['seconds']:9.2f} s  ratio exact/approx {e['seconds'] / r['seconds']:.2f}"
            print(f"{line}  ({load()})", flush=True)
            if r.get("stages"):
                parts = [f"{k} {w:.2f}/{c:.2f}" + (f" x{m}" if m > 1 else "") for k, (w, c, m) in r["stages"].items()]
                print(f"{'':8s}   stages (wall/CPU s): {', '.join(parts)}", flush=True)
            if n == sizes[-1]:
                for ok, what in (
                    (r["seconds"] < GOAL_SECONDS, f"{r['seconds']:.0f} s < {GOAL_SECONDS:.0f} s"),
                    (r["rss_gb"] < GOAL_RSS_GB, f"peak RSS {r['rss_gb']:.2f} GB < {GOAL_RSS_GB:.0f} GB"),
                ):
                    verdicts.append(f"{'PASS' if ok else 'FAIL'} {det} N={n}: {what}")
        # the exponent of one code path: knn/lof only between sizes that both built the approximate graph
        measured = sorted((n, t) for n, t in times.items() if approx[n])
        if len(measured) >= 2:
            (n1, t1), (n2, t2) = measured[-2:]
            g = math.log(t2 / t1) / math.log(n2 / n1)
            gc = math.log(cpu[n2] / cpu[n1]) / math.log(n2 / n1)
            print(f"{det:8s} growth exponent {n1} -> {n2}: {g:.2f} (wall), {gc:.2f} (CPU)", flush=True)
            if det in ("knn", "lof"):
                for what, e in (("wall", g), ("CPU", gc)):
                    ok = "PASS" if e <= GOAL_EXPONENT else "FAIL"
                    verdicts.append(f"{ok} {det}: growth exponent ({what}) {e:.2f} <= {GOAL_EXPONENT}")
        elif len(times) >= 2 and det in ("knn", "lof"):
            why = (
                f"growth exponent not computed: {len(measured)} size(s) on the approximate path "
                f"(N >= {EXACT_BELOW}); give two"
            )
            print(f"{det:8s} {why}", flush=True)
            verdicts.append(f"NOT JUDGED {det}: {why}")
    for v in verdicts:
        print(v, flush=True)


if __name__ == "__main__":
    main()
