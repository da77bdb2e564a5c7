"""AstroPT embedding throughput: FMB's embed stage against a bare loop of the same model work, and 095M on CPU.

1. ``fmb embed``'s path (``embed_dataset``: cache key, read the data set's batches, ``model.prepare``,
   forward, write and hash the Parquet shard, manifest) against a **bare loop** doing exactly the model's
   own work on the same batches, already read into memory: ``model.embed(batch)`` = ``prepare`` (the
   input contract: resampling to 0.262"/px, Lupton RGB rendering, patches, spiral order, spectrum
   patches; what upstream astroPT's data pipeline does before its network) + the forward passes and
   pooling, at the same batch size, dtype (fp32), ``torch.inference_mode`` and thread count (both run
   inside :func:`fmb.threads.limited`). What FMB adds (reading, the loader, Arrow/Parquet conversion and
   writes, hashing, the manifest) is the overhead the ratio measures. Target: throughput ratio >= 0.9.
   Also shown: the forward passes alone over tokens prepared beforehand ("forward only", the bare loop
   of earlier versions of this bench, which left the preparation out) and astropt's own
   ``generate_embeddings`` on the joint sequence (runs every block).
2. Time per batch of the 12/12/768 (095M) network on CPU (random weights, same passes).

The variants run interleaved in one process, ``--rounds`` times, in a rotated order each round, so that
the load of a shared machine hits all alike. The ratio is taken per round (wall time, and CPU time of all
threads of the process beside it: CPU time is what load noise changes least) and its median and range are
printed, with ``os.getloadavg()`` per round.

Run: python bench/bench_astropt.py [--n 256] [--batch-size 64] [--stamp 64] [--npix 7781] [--rounds 5]
     [--workers N] [--big-batch 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TARGET_RATIO = 0.9


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f}, n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stamp", type=int, default=64)
    ap.add_argument("--npix", type=int, default=7781)
    ap.add_argument("--rounds", "--repeat", type=int, default=5, help="interleaved rounds (median ratio kept)")
    ap.add_argument("--big-batch", type=int, default=16, help="batch size for the 095M timing (0: skip)")
    ap.add_argument(
        "--workers", default="", help="loader threads of fmb embed (default: FMB's); a list (0,1) times each"
    )
    ap.add_argument("--upstream", action="store_true", help="also time astropt's generate_embeddings")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.testing.plugins import registered_plugin
    from fmb.testing.toy import ToyDataset, toy_dataset_plugin
    from fmb.threads import limited
    from fmb_astropt.encode import hidden_states, pool

    spec = registry().model("astropt")
    ds = ToyDataset(size=a.n, stamp=a.stamp, npix=a.npix)

    def passes(m, ti, pi, ts, ps):
        with torch.inference_mode():
            pool(hidden_states(m.net, [("spectra", ts, ps)], m.layer), "mean")
            h = hidden_states(m.net, [("images", ti, pi), ("spectra", ts, ps)], m.layer)
            pool(h, "mean"), pool(h[:, : ti.shape[1]], "mean")

    with registered_plugin(toy_dataset_plugin(), "toy-dataset"), limited() as threads:
        print(
            f"torch {torch.__version__}, {threads} threads (fmb.threads.limited, both sides); {a.n} objects, "
            f"{a.stamp}px 4-band images, {a.npix}-pixel spectra, batch {a.batch_size}, workers {a.workers or 'default'}"
        )
        m = registry().load_model(spec.name, weights="random", options={"size": "001M"})
        batches = list(ds.iter_batches(a.batch_size))
        tokens = [(*m.image_inputs(b), *m.spectrum_inputs(b)[:2]) for b in batches]

        def fmb_embed(workers: int | None = None):
            with tempfile.TemporaryDirectory() as home:
                os.environ["FMB_HOME"] = home
                embed_dataset(m, ds, batch_size=a.batch_size, workers=workers)

        def bare():  # the model's own work: prepare + forward + pooling, on batches already in memory
            for b in batches:
                m.embed(b)

        def forward_only():
            for t in tokens:
                passes(m, *t)

        def prepare_only():
            for b in batches:
                m.prepare(b)

        def upstream():
            with torch.no_grad():
                for ti, pi, ts, ps in tokens:
                    m.net.generate_embeddings(
                        {"images": ti, "images_positions": pi, "spectra": ts, "spectra_positions": ps}
                    )

        workers = [int(w) for w in a.workers.split(",") if w.strip()] or [None]
        runs = {"fmb embed": lambda: fmb_embed(workers[0]), "bare (prepare+forward)": bare}
        runs["forward only"] = forward_only
        for w in workers[1:]:
            runs[f"fmb embed workers={w}"] = lambda w=w: fmb_embed(w)
        runs["prepare only"] = prepare_only
        if a.upstream:
            runs["astropt generate_embeddings (all blocks)"] = upstream
        bare(), fmb_embed(workers[0])  # warm-up (first-use imports of the preprocessing)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
        names = list(runs)
        for r in range(a.rounds):  # interleaved, rotated, so that machine load hits every variant alike
            for k in names[r % len(names) :] + names[: r % len(names)]:
                times[k].append(timed(runs[k]))
            w = {k: v[-1][0] for k, v in times.items()}
            f = w["fmb embed"]
            print(
                f"round {r}: load {os.getloadavg()[0]:.2f}; ratio wall {w['bare (prepare+forward)'] / f:.3f}"
                f" (forward only {w['forward only'] / f:.3f})",
                flush=True,
            )
        for k, v in times.items():
            wm, cm = statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)
            print(f"001M {k:42s} wall {wm:7.3f} s ({a.n / wm:7.1f} obj/s)  cpu {cm:7.3f} s  (medians)")
        ratios = {}
        for fmb in [k for k in runs if k.startswith("fmb embed")]:
            for base in ("bare (prepare+forward)", "forward only"):
                for i, what in ((0, "wall"), (1, "cpu")):
                    per = [b[i] / f[i] for b, f in zip(times[base], times[fmb])]
                    ratios.setdefault((base, what), statistics.median(per))
                    print(f"throughput ratio {fmb} / {base} ({what}): {spread(per)}")
        wall = ratios["bare (prepare+forward)", "wall"]
        print(
            f"target >= {TARGET_RATIO} (against the bare loop of the same model work, wall): "
            f"{'PASS' if wall >= TARGET_RATIO else 'FAIL'}; load now {os.getloadavg()}"
        )
        print(f"RATIO 001M {wall:.4f}")
        print(f"CPURATIO 001M {ratios['bare (prepare+forward)', 'cpu']:.4f}")
        print(f"FORWARDONLYRATIO 001M {ratios['forward only', 'wall']:.4f} (cpu {ratios['forward only', 'cpu']:.4f})")
        if a.big_batch <= 0:
            return

        big = registry().load_model(spec.name, weights="random", options={"size": "095M"})
        b = next(ds.iter_batches(a.big_batch))
        big.embed(b)  # warm-up
        per = [timed(lambda: big.embed(b)) for _ in range(a.rounds)]
        t_big, c_big = statistics.median(t[0] for t in per), statistics.median(t[1] for t in per)
        print(
            f"095M (12/12/768, image 224 px + spectrum) embed: {t_big:.2f} s wall ({c_big:.2f} s cpu) per batch "
            f"of {a.big_batch} ({t_big / a.big_batch * 1000:.0f} ms/object), medians"
        )


if __name__ == "__main__":
    main()
