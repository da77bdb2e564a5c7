"""``fmb probe`` speed: 2,000 objects x every feature set, the product against the previous method, one run.

Feature sets, as ``fmb probe --model M`` builds them for a model with image, spectrum and joint outputs:
the model's three outputs (1,024-d image, 768-d spectrum and 1,024-d joint, random Gaussian embeddings
mixed with the physical targets so that the fits have signal), the random-feature control (1,024-d) and
the baseline model's outputs (1,024-d image, 128-d spectrum, 1,152-d joint, embedded on the synthetic
survey as ``fmb probe`` does) -> 7 sets x 3 targets x 2 regressors (ridge, hgb) = 42 five-fold probes.
Only the probes are timed (not the survey's generation nor the baseline's embedding).

* after: ``fmb.probes.regress.run_probes``, the product, with its own thread settings (threadpoolctl,
  one thread per fit unless ``--threads``/``FMB_THREADS``).
* before (skip with ``--no-before``): the method of commit 7c73a67, written here with scikit-learn
  alone and run under the same thread limit: per fold ``StandardScaler + RidgeCV(alphas=logspace(-3, 4,
  15), alpha_per_target=True)`` on the targets together, and per fold and target
  ``StandardScaler + PCA(32, randomized) + HistGradientBoostingRegressor()`` (100 trees, no early stopping).

It prints wall and CPU seconds (CPU of this process, all threads) with the load average before and
after, PASS/FAIL against the 60 s goal of issue 18, and how the numbers of the two agree: ridge is the
same estimator (R^2 equal to ~1e-6: RidgeCV returns float32 predictions for float32 features, the
product keeps float64), hgb changed (early stopping on 10% of the training fold), so its R^2 moves.

    python bench/bench_probe.py [--n 2000] [--folds 5] [--threads N] [--no-before]

Figures (shared 2-core VM, 2026-11-30, load 7-10): after 97.0 / 105.2 s wall, 48.1 / 50.4 s cpu; before
303.2 / 289.2 s wall, 148.2 / 139.6 s cpu (2.8-3.1x); docs/detection.md ("Probe speed") has the breakdown.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

TARGET_S = 60.0


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def before_rows(sets: dict, labels: dict, folds: int, seed: int, threads: int) -> list[dict]:
    """The previous method (see the module docstring), rows keyed like the product's."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from fmb.probes.regress import scores

    names = list(labels)
    Y = np.column_stack([labels[t] for t in names])  # the bench's targets have no NaN
    rows = []
    with threadpool_limits(threads):
        for key, X in sets.items():
            split = list(KFold(folds, shuffle=True, random_state=seed).split(X))
            P = {"ridge": np.empty(Y.shape), "hgb": np.empty(Y.shape)}
            for tr, te in split:
                m = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15), alpha_per_target=True))
                P["ridge"][te] = m.fit(X[tr], Y[tr]).predict(X[te])
            for j in range(len(names)):
                for tr, te in split:
                    steps = [StandardScaler()]
                    if X.shape[1] > 32:
                        steps.append(PCA(32, svd_solver="randomized", random_state=seed))
                    m = make_pipeline(*steps, HistGradientBoostingRegressor(random_state=seed))
                    P["hgb"][te, j] = m.fit(X[tr], Y[tr, j]).predict(X[te])
            for j, t in enumerate(names):
                for reg in ("ridge", "hgb"):
                    rows.append({"key": key, "target": t, "regressor": reg, **scores(t, Y[:, j], P[reg][:, j])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="FMB_THREADS for the fits (default: FMB's)")
    ap.add_argument("--no-before", action="store_true", help="time only the product")
    a = ap.parse_args()
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-probe-"))
    if a.threads:
        os.environ["FMB_THREADS"] = str(a.threads)

    import numpy as np
    import pyarrow as pa

    from fmb.data import canonical as C
    from fmb.probes.embeddings import embed_table
    from fmb.probes.regress import fit_threads, labels_of, outputs_of, run_probes

    t0 = time.perf_counter()
    base = embed_table("baseline", "synthetic", {}, {"size": a.n}, seed=a.seed)
    print(f"{fit_threads()} thread(s) per fit; baseline embedded in {time.perf_counter() - t0:.1f} s; load {load()}")
    labels = labels_of(base)
    rng = np.random.default_rng(a.seed)
    y = np.column_stack([np.nan_to_num(v) for v in labels.values()])
    cols = {c: base.column(c) for c in (C.OBJECT_ID, *labels)}
    sets = {}
    for out, dim in (("image", 1024), ("spectrum", 768), ("joint", 1024)):
        x = (rng.standard_normal((a.n, dim)) + y @ rng.standard_normal((y.shape[1], dim))).astype(np.float32)
        cols[out] = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
        sets[("model", out)] = x
    table = pa.table(cols)
    # run_probes' random control (seeded, the widest output's dimension) and the baseline (same objects, same order)
    sets[("random", "gaussian1024")] = np.random.default_rng(a.seed).standard_normal((a.n, 1024)).astype(np.float32)
    sets.update({("baseline", o): C.column_array(base, o) for o in outputs_of(base)})

    figures = {}
    c0, t0, l0 = time.process_time(), time.perf_counter(), load()
    rows = run_probes("model", table, folds=a.folds, seed=a.seed, baseline=base)
    figures["after"] = (time.perf_counter() - t0, time.process_time() - c0, l0, load())
    if not a.no_before:
        c0, t0, l0 = time.process_time(), time.perf_counter(), load()
        old = before_rows(sets, labels, a.folds, a.seed, fit_threads())
        figures["before"] = (time.perf_counter() - t0, time.process_time() - c0, l0, load())

    print(f"{len(rows)} probes ({len(sets)} feature sets x {len(labels)} targets x 2 regressors), {a.n} objects")
    new = {((r["model"], r["output"]), r["target"], r["regressor"]): r for r in rows}
    if not a.no_before:
        print("R^2 before -> after (ridge: same estimator; hgb: early stopping now)")
        for reg in ("ridge", "hgb"):
            d = [(o, new[o["key"], o["target"], reg]) for o in old if o["regressor"] == reg]
            dr2 = max(abs(n["r2"] - o["r2"]) for o, n in d)
            drm = max(abs(n["rmse"] - o["rmse"]) for o, n in d)
            print(f"  {reg}: max |dR^2| {dr2:.2e}, max |dRMSE| {drm:.2e} over {len(d)} probes")
        for o, n in ((o, new[o["key"], o["target"], "hgb"]) for o in old if o["regressor"] == "hgb"):
            print(f"    hgb {'/'.join(o['key'])} {o['target']}: {o['r2']:.4f} -> {n['r2']:.4f}")
    for k, (wall, cpu, l0, l1) in figures.items():
        verdict = "PASS" if wall < TARGET_S else "FAIL"
        print(
            f"{k:6s}: {wall:6.1f} s wall, {cpu:6.1f} s cpu; goal < {TARGET_S:.0f} s wall: {verdict}; load {l0} -> {l1}"
        )
    if "before" in figures:
        print(
            f"ratio before/after: wall {figures['before'][0] / figures['after'][0]:.1f}x, "
            f"cpu {figures['before'][1] / figures['after'][1]:.1f}x"
        )


if __name__ == "__main__":
    main()
