"""The ``nf`` detector against upstream's flow recipe: time and AUROC.

Part 1 (time): 20,000 x 512 embeddings (a seeded low-rank Gaussian plus noise, 2% planted
off-manifold outliers). FMB's ``nf`` (zuko MAF, 5-fold out-of-fold, early stopping) against
upstream's recipe fitted and scored on the same rows: PCA(100) -> z-score -> clip 8 sigma ->
normflows RealNVP (DiagGaussian + 4 x [AffineCouplingBlock(MLP [d/2, 16, 16, d], zero init,
sigmoid scale), Permute swap, ActNorm]), Adam lr 1e-4, weight decay 1e-5, 5 epochs, batch 24,
grad clip 5. normflows is installed with ``pip install --no-deps normflows`` (it needs only torch
and numpy, so the CPU torch stays); without it the upstream rows are skipped.

Part 2 (AUROC): ``fmb run --model baseline --detector nf`` and ``--detector iforest`` on the default
synthetic survey, then upstream's recipe on the same cached baseline embeddings; AUROC per modality.

Both use one torch thread (faster than two on a 2-core VM). Run:
    python bench/bench_nf.py [--n 20000] [--dim 512] [--skip-time] [--skip-auroc] [--out bench-nf]
"""

from __future__ import annotations

import argparse
import json
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
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def part_time(n: int, dim: int) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from fmb.detectors.flow import FlowDetector

    torch.set_num_threads(1)
    X, y = planted(n, dim)
    det = FlowDetector()
    s_nf, t_nf = timed(det.fit_score, X, 0)
    row = {
        "n": n,
        "dim": dim,
        "nf_seconds": round(t_nf, 1),
        "nf_auroc_planted": round(roc_auc_score(y, s_nf), 4),
        "nf_epochs": [h["epochs_run"] for h in det.history_],
        "nf_params": det.params,
    }
    if have_normflows():
        s_up, t_up = timed(upstream_recipe, X)
        row.update(
            upstream_seconds=round(t_up, 1),
            upstream_auroc_planted=round(roc_auc_score(y, s_up), 4),
            time_ratio_nf_over_upstream=round(t_nf / t_up, 2),
        )
    return row


def fmb_run(detector: str, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "fmb.cli",
        "run",
        "--model",
        "baseline",
        "--detector",
        detector,
        "--output",
        str(out),
        "-q",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    res = json.loads((out / "results.json").read_text())
    return {
        "seconds_total": round(time.perf_counter() - t0, 1),
        **{
            m: {
                "auroc": round(e["metrics"]["auroc"], 4),
                "ap": round(e["metrics"]["average_precision"], 4),
                "detect_seconds": e["detect_seconds"],
            }
            for m, e in res["modalities"].items()
        },
    }


def part_auroc(out: Path) -> dict:
    import torch
    from sklearn.metrics import average_precision_score, roc_auc_score

    from fmb.data import canonical as C
    from fmb.probes.embeddings import run_embeddings

    rows = {d: fmb_run(d, out / d) for d in ("iforest", "nf")}
    if have_normflows():
        torch.set_num_threads(1)
        _, table = run_embeddings(out / "nf")
        y = table.column(C.IS_ANOMALY).to_numpy(zero_copy_only=False).astype(bool)
        up = {}
        for m in ("image", "spectrum", "joint"):
            X = C.column_array(table, m)
            ok = np.isfinite(X).all(axis=1)
            s, t = timed(upstream_recipe, X[ok])
            up[m] = {
                "auroc": round(roc_auc_score(y[ok], s), 4),
                "ap": round(average_precision_score(y[ok], s), 4),
                "detect_seconds": round(t, 2),
            }
        rows["upstream-realnvp"] = up
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=512)
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
        if "time_ratio_nf_over_upstream" in report["time"]:
            print(f"time ratio nf / upstream = {report['time']['time_ratio_nf_over_upstream']}", flush=True)
    if not args.skip_auroc:
        report["auroc_synthetic_baseline"] = part_auroc(out)
        print(json.dumps(report["auroc_synthetic_baseline"], indent=1), flush=True)
    (out / "bench_nf.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
