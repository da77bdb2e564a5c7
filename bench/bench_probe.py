"""``fmb probe`` speed: 2,000 objects x every feature set, with the probe's own code (``run_probes``).

Feature sets, as ``fmb probe --model M`` builds them for a model with image, spectrum and joint outputs:
the model's three outputs (1,024-d image, 768-d spectrum and 1,024-d joint, random Gaussian embeddings
mixed with the physical targets so that the fits have signal), the random-feature control and the
baseline model's outputs (embedded on the synthetic survey, as ``fmb probe`` does) -> 7 sets x 3
targets x 2 regressors (ridge, hgb) = 42 five-fold fits. Only the probe is timed (the survey's
generation and the baseline's embedding are not). Target: under 60 s on the 2-core machine.

    python bench/bench_probe.py [--n 2000] [--folds 5] [--threads N]

Measured on the shared 2-core VM, 2026-11-30 (load average in brackets; noisy):

before = 2fc1e1e (2 threads per fit, one ridge per target); after = 1 thread per fit, ridge on all
targets at once (same predictions):

* ``--n 600``: before did not finish, killed after 227 s of probe (load 2.7-3.3); after 32.1 s wall,
  31.6 s cpu (load 2.8), run just before it.
* ``--n 2000``: before not run to the end (under load ~3.6 a profile used 10 CPU minutes at n=600
  without finishing); after 141.5 s wall, 139.1 s cpu (load 2.1-2.5): ABOVE the 60 s target.

Per five-fold fit at n=600 (one target, baseline embeddings, load ~3.6-3.9), 2 threads -> 1 thread:
ridge 1,024-d 8.58 -> 0.62 s, hgb 1,024-d 8.35 -> 1.51 s, hgb 128-d 37.3 -> 1.46 s, ridge 1,152-d 13.96 ->
0.33 s (OpenMP/BLAS barriers waiting on a descheduled thread). At n=2000, 1 thread: ridge on 1,024-d 19 s
(the SVD of the 1,600 x 1,024 training fold, now shared by the three targets), hgb 2.4-2.9 s per target.
What is left above 60 s: six >= 768-d feature sets x 5 SVDs for ridge (~90 s) and 21 hgb five-fold fits
(~50 s). Reaching 60 s needs a change in what is measured (ridge on PCA components, or hgb with early
stopping on a held-out fraction), not done here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

TARGET_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="FMB_THREADS for the fits (default: FMB's)")
    a = ap.parse_args()
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-probe-"))
    if a.threads:
        os.environ["FMB_THREADS"] = str(a.threads)

    import numpy as np
    import pyarrow as pa

    from fmb.data import canonical as C
    from fmb.probes.embeddings import embed_table
    from fmb.probes.regress import fit_threads, labels_of, run_probes

    t0 = time.perf_counter()
    base = embed_table("baseline", "synthetic", {}, {"size": a.n}, seed=a.seed)
    dt = time.perf_counter() - t0
    print(f"load {os.getloadavg()}; {fit_threads()} thread(s) per fit; baseline embedded in {dt:.1f} s")
    labels = labels_of(base)
    rng = np.random.default_rng(a.seed)
    y = np.column_stack([np.nan_to_num(v) for v in labels.values()])
    cols = {c: base.column(c) for c in (C.OBJECT_ID, *labels)}
    for out, dim in (("image", 1024), ("spectrum", 768), ("joint", 1024)):
        x = rng.standard_normal((a.n, dim)) + y @ rng.standard_normal((y.shape[1], dim))
        cols[out] = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).reshape(-1)), dim)
    table = pa.table(cols)

    t0, c0 = time.perf_counter(), time.process_time()
    rows = run_probes("model", table, folds=a.folds, seed=a.seed, baseline=base)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sets = sorted({(r["model"], r["output"]) for r in rows})
    print(f"{len(rows)} fits ({len(sets)} feature sets x targets x regressors), {a.n} objects, {a.folds} folds")
    for m, o in sets:
        r2 = {f"{r['target']}/{r['regressor']}": r.get("r2") for r in rows if (r["model"], r["output"]) == (m, o)}
        print(f"  {m}/{o}: " + ", ".join(f"{k} R2 {v:.3f}" for k, v in r2.items() if v is not None))
    print(
        f"probe: {wall:.1f} s wall, {cpu:.1f} s cpu (target < {TARGET_S:.0f} s): "
        f"{'OK' if wall < TARGET_S else 'ABOVE TARGET'}; load {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
