"""The pyod adapter's overhead: FMB's detector against pyod called directly on the same matrix.

Target: the adapter within 5% of pyod alone (it adds standardisation and checks).
Run: python bench/bench_detector_adapter.py [--n 20000] [--d 512] [--detector iforest] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fmb.detectors.pyod_adapter import PyODDetector, _pyod_class
from fmb.detectors.pyod_catalog import PYOD_DETECTORS

TARGET_RATIO = 1.05


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--detector", default="iforest")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    X = np.random.default_rng(0).normal(size=(a.n, a.d)).astype(np.float32)
    path, _, _ = PYOD_DETECTORS[a.detector]
    cls = _pyod_class(path)
    det = PyODDetector(a.detector)
    params = det.resolved_params(seed=0)

    def direct():
        m = cls(**params)
        m.fit(X)
        return m.decision_scores_

    t_direct = timed(direct, a.repeat)
    t_fmb = timed(lambda: det.fit_score(X, seed=0), a.repeat)
    ratio = t_fmb / t_direct
    print(f"{a.detector} on {a.n} x {a.d}, params {params}")
    print(f"pyod directly   {t_direct:.2f} s")
    print(
        f"FMB adapter     {t_fmb:.2f} s  ratio {ratio:.3f} (target <= {TARGET_RATIO}): "
        f"{'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}"
    )


if __name__ == "__main__":
    main()
