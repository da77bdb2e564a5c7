"""The ``nf`` detector against upstream's flow recipe: time and AUROC, with a verdict per goal.

Part 1 (time, issue 18): 20,000 x 512 embeddings (a seeded low-rank Gaussian plus noise, 2% planted
off-manifold outliers), one run each: FMB's ``nf`` (defaults: zuko MAF, 3-fold out-of-fold, a step
budget with median early stopping) against upstream's recipe fitted and scored on the same rows:
PCA(100) -> z-score -> clip 8 sigma -> normflows RealNVP (DiagGaussian + 4 x [AffineCouplingBlock(MLP
[d/2, 16, 16, d], zero init, sigmoid scale), Permute swap, ActNorm]), Adam lr 1e-4, weight decay
1e-5, 5 epochs, batch 24, grad clip 5. Goal: time ratio nf / upstream <= 1.5.

Part 2 (AUROC, issue 16): the baseline model's embeddings of the default synthetic survey (embedded
once by ``fmb run --model baseline --detector ecod``, then read from the cache) in canonical
(object_id) order, as ``fmb run`` gives them to a detector; ``nf`` and upstream's recipe with seeds
0, 1, 2 on image, spectrum and joint. Printed: AUROC and AP as mean +- sd over the seeds, and the
verdict "nf mean AUROC > upstream mean AUROC" per modality.

normflows is installed with ``pip install --no-deps normflows`` (it needs only torch and numpy, so
the CPU torch stays); without it the upstream rows and verdicts are skipped. Both use one torch
thread (faster than two on a loaded 2-core VM); part 1 reports wall and process CPU seconds (on a
machine shared with other jobs the CPU-time ratio is the steadier one). Run:
    python bench/bench_nf.py [--n 20000] [--dim 512] [--seeds 0,1,2] [--skip-time] [--skip-auroc] [--out bench-nf]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def planted(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 16))
    X = np.tanh(latent @ rng.standard_normal((16, dim)) / 4) + 0.1 * rng.standard_normal((n, dim))
    y = np.zeros(n, bool)
    y[rng.choice(n, n // 50, replace=False)] = True
    X[y] += 0.6 * rng.standard_normal((int(y.sum()), dim))
    return X.astype(np.float32), y


def upstream_recipe(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """Upstream fmb.detection: fit and score the same rows; returns -log p."""
    import normflows as nf
    import torch
    from sklearn.decomposition import PCA

    torch.manual_seed(seed)
    if X.shape[1] > 100:
        X = PCA(100, random_state=seed).fit_transform(X)
    x = torch.tensor(X, dtype=torch.float32)
    x = ((x - x.mean(0)) / x.std(0).clamp_min(1e-8)).clamp(-8, 8)
    d = x.shape[1]
    flows = []
    for _ in range(4):
        flows += [
            nf.flows.AffineCouplingBlock(nf.nets.MLP([d // 2, 16, 16, d], init_zeros=True), scale_map="sigmoid"),
            nf.flows.Permute(d, mode="swap"),
            nf.flows.ActNorm(d),
        ]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(d), flows)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    for _ in range(5):
        for idx in torch.randperm(len(x)).split(24):
            loss = model.forward_kld(x[idx])
            if not torch.isfinite(loss):
                continue
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    model.eval()
    with torch.no_grad():
        return -torch.cat([model.log_prob(b) for b in x.split(4096)]).double().numpy()


def have_normflows() -> bool:
    try:
        import normflows  # noqa: F401
    except ImportError:
        return False
    return True


def timed(fn, *args):
    """``(fn(*args), wall seconds)``; the process CPU seconds of the call go to ``timed.cpu``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    timed.cpu = time.process_time() - c0
    return out, time.perf_counter() - t0


def part_time(n: int, dim: int) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from fmb.detectors.flow import FlowDetector

    torch.set_num_threads(1)
    X, y = planted(n, dim)
    det = FlowDetector(threads=1)
    s_nf, t_nf = timed(det.fit_score, X, 0)
    c_nf = timed.cpu
    print(f"nf {n} x {dim}: {t_nf:.1f} s wall, {c_nf:.1f} s CPU", flush=True)
    row = {
        "n": n,
        "dim": dim,
        "nf_seconds": round(t_nf, 1),
        "nf_cpu_seconds": round(c_nf, 1),
        "nf_auroc_planted": round(roc_auc_score(y, s_nf), 4),
        "nf_steps_run": [h["steps_run"] for h in det.history_],
        "nf_best_step": [h["best_step"] for h in det.history_],
        "nf_params": det.params,
    }
    if have_normflows():
        s_up, t_up = timed(upstream_recipe, X)
        row.update(
            upstream_seconds=round(t_up, 1),
            upstream_cpu_seconds=round(timed.cpu, 1),
            cpu_time_ratio_nf_over_upstream=round(c_nf / timed.cpu, 2),
            upstream_auroc_planted=round(roc_auc_score(y, s_up), 4),
            time_ratio_nf_over_upstream=round(t_nf / t_up, 2),
        )
    row["load_average"] = os.getloadavg()
    return row


def survey_embeddings(out: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The baseline model's image, spectrum and joint embeddings of the default survey, in canonical
    order (``fmb run`` embeds and caches them once), and the labels."""
    from fmb.data import canonical as C
    from fmb.probes.embeddings import run_embeddings
    from fmb.protocol.run import canonical_order

    run = out / "embed"
    if not (run / "results.json").exists():
        cmd = [sys.executable, "-m", "fmb.cli", "run", "--model", "baseline", "--detector", "ecod"]
        subprocess.run([*cmd, "--output", str(run), "-q", "--no-report"], check=True, stdout=subprocess.DEVNULL)
    _, table = run_embeddings(run)
    table = table.take(canonical_order(table))
    y = table.column(C.IS_ANOMALY).to_numpy(zero_copy_only=False)
    mats = {m: C.column_array(table, m) for m in ("image", "spectrum", "joint")}
    return mats, y


def mean_sd(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {
        "mean": round(float(v.mean()), 4),
        "sd": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4),
        "values": [round(float(x), 4) for x in v],
    }


def part_auroc(out: Path, seeds: list[int]) -> dict:
    import torch
    from sklearn.metrics import average_precision_score, roc_auc_score

    from fmb.detectors.flow import FlowDetector

    torch.set_num_threads(1)
    mats, y = survey_embeddings(out)
    labelled = np.array([v is not None for v in y])
    systems = {"nf": lambda X, s: FlowDetector(threads=1).fit_score(X, s)}
    if have_normflows():
        systems["upstream-realnvp"] = upstream_recipe
    rows: dict = {}
    for name, fn in systems.items():
        rows[name] = {}
        for m, X in mats.items():
            ok = np.isfinite(X).all(axis=1)
            yy = y[ok & labelled].astype(bool)
            au, ap, ts = [], [], []
            for seed in seeds:
                s, t = timed(fn, X[ok], seed)
                s = s[labelled[ok]]
                au.append(roc_auc_score(yy, s))
                ap.append(average_precision_score(yy, s))
                ts.append(t)
            rows[name][m] = {"auroc": mean_sd(au), "ap": mean_sd(ap), "seconds": mean_sd(ts)}
            print(
                f"{name:17s} {m:8s} AUROC {rows[name][m]['auroc']['mean']:.4f} +- {rows[name][m]['auroc']['sd']:.4f}"
                f"  AP {rows[name][m]['ap']['mean']:.4f} +- {rows[name][m]['ap']['sd']:.4f}"
                f"  {np.mean(ts):.1f} s/seed",
                flush=True,
            )
    if "upstream-realnvp" in rows:
        rows["verdict_nf_beats_upstream_mean_auroc"] = {
            m: rows["nf"][m]["auroc"]["mean"] > rows["upstream-realnvp"][m]["auroc"]["mean"] for m in mats
        }
    rows["seeds"] = seeds
    rows["load_average"] = os.getloadavg()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--seeds", default="0,1,2", help="seeds of part 2 (comma-separated)")
    ap.add_argument("--skip-time", action="store_true")
    ap.add_argument("--skip-auroc", action="store_true")
    ap.add_argument("--out", default="bench-nf")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"normflows": have_normflows()}
    if not args.skip_time:
        report["time"] = part_time(args.n, args.dim)
        print(json.dumps(report["time"], indent=1, default=str), flush=True)
        for kind in ("time", "cpu_time"):
            ratio = report["time"].get(f"{kind}_ratio_nf_over_upstream")
            if ratio is not None:
                verdict = "MET" if ratio <= 1.5 else "NOT MET"
                print(f"{kind.replace('_', ' ')} ratio nf / upstream = {ratio}: goal <= 1.5 {verdict}", flush=True)
    if not args.skip_auroc:
        seeds = [int(s) for s in args.seeds.split(",")]
        res = report["auroc_synthetic_baseline"] = part_auroc(out, seeds)
        for m, ok in res.get("verdict_nf_beats_upstream_mean_auroc", {}).items():
            print(f"{m:8s} nf mean AUROC > upstream's over seeds {seeds}: {'MET' if ok else 'NOT MET'}", flush=True)
        print(f"load average {res['load_average']}", flush=True)
    (out / "bench_nf.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
