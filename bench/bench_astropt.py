"""AstroPT embedding throughput: FMB's embed stage against a bare forward loop, and 095M on CPU.

1. ``fmb embed`` path (``embed_dataset``: read batches, tokenise, forward, write the Parquet
   cache) against a bare loop of the same forward passes (spectrum pass + joint pass, same
   truncation and pooling) over tokens prepared beforehand. Target: throughput ratio >= 0.9.
   Also shown: astropt's own ``generate_embeddings`` on the joint sequence (runs every block).
2. Time per batch of the 12/12/768 (095M) network on CPU (random weights, same passes).

Run: python bench/bench_astropt.py [--n 256] [--batch-size 64] [--stamp 64] [--npix 7781] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

TARGET_RATIO = 0.9


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads of this process) over ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stamp", type=int, default=64)
    ap.add_argument("--npix", type=int, default=7781)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-batch", type=int, default=16, help="batch size for the 095M timing (0: skip)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.testing.plugins import registered_plugin
    from fmb.testing.toy import ToyDataset, toy_dataset_plugin
    from fmb_astropt.encode import hidden_states, pool

    spec = registry().model("astropt")
    ds = ToyDataset(size=a.n, stamp=a.stamp, npix=a.npix)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {a.n} objects, "
        f"{a.stamp}px 4-band images, {a.npix}-pixel spectra, batch {a.batch_size}"
    )

    def passes(m, ti, pi, ts, ps):
        with torch.inference_mode():
            pool(hidden_states(m.net, [("spectra", ts, ps)], m.layer), "mean")
            h = hidden_states(m.net, [("images", ti, pi), ("spectra", ts, ps)], m.layer)
            pool(h, "mean"), pool(h[:, : ti.shape[1]], "mean")

    with registered_plugin(toy_dataset_plugin(), "toy-dataset"):
        m = registry().load_model(spec.name, weights="random", options={"size": "001M"})
        batches = list(ds.iter_batches(a.batch_size))
        tokens = [(*m.image_inputs(b), *m.spectrum_inputs(b)[:2]) for b in batches]

        def fmb_embed():
            with tempfile.TemporaryDirectory() as home:
                os.environ["FMB_HOME"] = home
                embed_dataset(m, ds, batch_size=a.batch_size, workers=a.workers)

        def bare():
            for t in tokens:
                passes(m, *t)

        def upstream():
            with torch.no_grad():
                for ti, pi, ts, ps in tokens:
                    m.net.generate_embeddings(
                        {"images": ti, "images_positions": pi, "spectra": ts, "spectra_positions": ps}
                    )

        bare(), fmb_embed()  # warm-up (first-use imports of the preprocessing)
        runs = {"fmb embed": fmb_embed, "bare forward": bare, "astropt generate_embeddings (all blocks)": upstream}
        best = {k: (float("inf"), float("inf")) for k in runs}
        for _ in range(a.repeat):  # interleaved, so that machine load hits all three alike
            for k, fn in runs.items():
                w, c = best_of(fn, 1)
                best[k] = (min(best[k][0], w), min(best[k][1], c))
        for k, (w, c) in best.items():
            print(f"001M {k:42s} wall {w:7.3f} s ({a.n / w:7.1f} obj/s)  cpu {c:7.3f} s")
        for i, what in ((0, "wall"), (1, "cpu")):
            ratio = best["bare forward"][i] / best["fmb embed"][i]
            print(
                f"throughput ratio fmb/bare ({what} time) = {ratio:.3f} (target >= {TARGET_RATIO}): "
                f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"
            )
        print(f"RATIO 001M {best['bare forward'][0] / best['fmb embed'][0]:.4f}")
        if a.big_batch <= 0:
            return

        big = registry().load_model(spec.name, weights="random", options={"size": "095M"})
        b = next(ds.iter_batches(a.big_batch))
        big.embed(b)  # warm-up
        t_big, c_big = best_of(lambda: big.embed(b), a.repeat)
        print(
            f"095M (12/12/768, image 224 px + spectrum) embed: {t_big:.2f} s wall ({c_big:.2f} s cpu) per batch "
            f"of {a.big_batch} ({t_big / a.big_batch * 1000:.0f} ms/object)"
        )


if __name__ == "__main__":
    main()
