"""GPU throughput of ``fmb embed``'s code path against a bare forward loop, per model at official size.

For each model (AstroCLIP official, AstroPT 095M, AION base; random weights where none are cached), each
precision (fp32, bf16 autocast) and each batch size (64, 256, 512):

- ``fmb``: ``embed_dataset`` into an empty embedding cache, exactly what ``fmb embed`` runs: the
  prefetching loader reads and prepares (``model.prepare``) batches in a background thread and pins
  them, copies go ``non_blocking``, forward passes run under ``inference_mode`` (+ autocast), the
  Parquet cache is written;
- ``bare``: the same ``model.embed_prepared`` forward passes over inputs prepared and moved to the device
  beforehand (no reading, preprocessing, host-to-device copy or cache writing), same precision.

Prints objects per second of both, their ratio (target >= 0.9), and the peak GPU memory of each run
(``torch.cuda.max_memory_allocated``). The whole run is budgeted (``--budget`` seconds, default 420, so
that it ends within 8 minutes with the model builds): each model gets an equal share of what is left and
a configuration past that share is skipped with a message (each model runs at least its first one);
elapsed time is printed on every line.

    python bench/bench_gpu.py                         # CUDA, official sizes
    python bench/bench_gpu.py --device cpu --quick    # smoke test on CPU: tiny sizes, a few objects

Without a CUDA device (and without ``--device cpu``) it exits at once with a one-line message.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

OFFICIAL = {"astroclip": {}, "astropt": {"size": "095M"}, "aion": {"size": "base"}}
QUICK = {"astroclip": {"size": "small"}, "astropt": {"size": "001M"}, "aion": {"size": "tiny"}}
TARGET_RATIO = 0.9
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def bare_loop(model, prepared: list, device: str, precision: str) -> float:
    """Seconds for the forward passes alone over inputs already on the device."""
    from fmb.protocol.accel import forward_context

    sync(device)
    t0 = time.perf_counter()
    for p in prepared:
        with forward_context(device, precision):
            model.embed_prepared(p)
    sync(device)
    return time.perf_counter() - t0


def fmb_path(model, dataset, batch_size: int, precision: str, workers: int, device: str) -> float:
    """Seconds for ``embed_dataset`` (``fmb embed``'s code) into an empty embedding cache."""
    import shutil

    from fmb.home import cache_dir
    from fmb.protocol.embed import embed_dataset

    shutil.rmtree(cache_dir("embeddings"), ignore_errors=True)
    sync(device)
    t0 = time.perf_counter()
    embed_dataset(model, dataset, batch_size=batch_size, precision=precision, workers=workers)
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: a smoke test, use --quick)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few objects, one small batch size")
    ap.add_argument("--models", default="astroclip,astropt,aion")
    ap.add_argument("--n", type=int, default=None, help="objects per run (default 2048; quick 8)")
    ap.add_argument("--batch-sizes", default=None, help="comma-separated (default 64,256,512; quick 4)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--workers", type=int, default=1, help="loader threads of the fmb path")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (default 420)")
    a = ap.parse_args()

    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "bench_gpu: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU, "
            "or smoke-test it with --device cpu --quick"
        )
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-gpu-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n = a.n or (8 if a.quick else 2048)
    sizes = [int(b) for b in (a.batch_sizes or ("4" if a.quick else "64,256,512")).split(",")]
    precisions = a.precisions.split(",")
    models = [m for m in a.models.split(",") if m]
    options = QUICK if a.quick else OFFICIAL

    from fmb.plugins import registry
    from fmb.protocol.accel import move, pin_memory_for

    reg = registry()
    ds = reg.load_dataset("synthetic", {"size": n, "chunk_size": min(n, 512)})
    for _ in ds.iter_batches(max(sizes)):  # generate (and cache) the data set before any timing
        pass
    gpu = torch.cuda.get_device_name(torch.device(a.device)) if a.device.startswith("cuda") else "cpu"
    say(
        f"{gpu}; torch {torch.__version__}; {n} synthetic objects; batch sizes {sizes}; precisions {precisions}; "
        f"pinned memory {pin_memory_for(a.device)}; loader workers {a.workers}; budget {a.budget:.0f} s"
    )
    rows = []
    for k, name in enumerate(models):
        share = (a.budget - (time.perf_counter() - T0)) / (len(models) - k)
        start = time.perf_counter()
        t = time.perf_counter()
        model = reg.load_model(name, weights="auto", device=a.device, options=options[name])
        say(
            f"{name} {options[name] or 'official'}: built in {time.perf_counter() - t:.1f} s "
            f"(weights {model.weights.kind}); share of the budget {share:.0f} s"
        )
        for bs in sizes:
            batches = list(ds.iter_batches(bs))
            prepared = [move(model.prepare(b), a.device) for b in batches]
            for precision in precisions:
                used = time.perf_counter() - start
                if used > share and any(r[0] == name for r in rows):  # every model gets one configuration
                    say(f"{name} batch {bs} {precision}: skipped (the model's share of the budget is spent)")
                    continue
                bare_loop(model, prepared[:1], a.device, precision)  # warm-up (kernels, autotuning)
                reset_peak(a.device)
                t_bare = bare_loop(model, prepared, a.device, precision)
                mem_bare = peak_gib(a.device)
                reset_peak(a.device)
                t_fmb = fmb_path(model, ds, bs, precision, a.workers, a.device)
                mem_fmb = peak_gib(a.device)
                ratio = t_bare / t_fmb
                mem = "" if mem_fmb is None else f"; peak GPU memory bare {mem_bare:.2f} GiB, fmb {mem_fmb:.2f} GiB"
                say(
                    f"{name} batch {bs:4d} {precision}: bare {n / t_bare:9.1f} obj/s, fmb {n / t_fmb:9.1f} obj/s, "
                    f"ratio {ratio:.3f} {'OK' if ratio >= TARGET_RATIO else 'BELOW'}{mem}"
                )
                rows.append((name, bs, precision, n / t_bare, n / t_fmb, ratio, mem_fmb))
            del prepared
        del model
        if a.device.startswith("cuda"):
            torch.cuda.empty_cache()
    head = ("model", "batch", "prec", "bare obj/s", "fmb obj/s", "ratio", "peak GiB")
    print("\n{:10s} {:>5s} {:>5s} {:>11s} {:>10s} {:>6s} {:>8s}".format(*head))
    for name, bs, precision, b, f, r, mem in rows:
        peak = "-" if mem is None else f"{mem:.2f}"
        print(f"{name:10s} {bs:5d} {precision:>5s} {b:11.1f} {f:10.1f} {r:6.3f} {peak:>8s}")
    say(f"done ({len(rows)} configurations); target ratio >= {TARGET_RATIO}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
