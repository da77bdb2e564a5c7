"""AstroCLIP throughput: ``fmb embed`` against a bare forward loop over the same pre-loaded tensors.

Small size: FMB's embedding stage (reading the data set, preprocessing, the forward pass, writing the
Parquet cache) against the network alone on already preprocessed tensors, same batch size.
Target: FMB at least 0.9 of the bare loop's throughput. Official size (random weights): time per
batch of the bare network and of FMB's model.embed on a few batches, CPU.
Run: python bench/bench_astroclip.py [--n 256] [--batch-size 64] [--official-batches 2]
     [--official-batch-size 8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

TARGET_RATIO = 0.9


def bare_forward(net, images: torch.Tensor, spectra: torch.Tensor, batch_size: int) -> float:
    """Seconds for the network alone over every batch (inference mode)."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            a = net.image_encoder(images[i : i + batch_size])
            b = net.spectrum_encoder(spectra[i : i + batch_size])
            torch.nn.functional.normalize(a, dim=-1) + torch.nn.functional.normalize(b, dim=-1)
    return time.perf_counter() - t0


def fmb_embed(model, dataset, batch_size: int, workers: int | None = None) -> float:
    """Seconds for FMB's embedding stage into an empty embedding cache (what ``fmb embed`` runs). Only
    the embeddings are removed: the data set stays generated (its generation is not timed)."""
    import shutil

    from fmb.home import cache_dir
    from fmb.protocol.embed import embed_dataset

    shutil.rmtree(cache_dir("embeddings"), ignore_errors=True)
    t0 = time.perf_counter()
    embed_dataset(model, dataset, batch_size=batch_size, workers=workers)
    return time.perf_counter() - t0


def timed_embed(model, batches: list) -> float:
    """Seconds for ``model.embed`` alone over batches already in memory (preprocessing + forward)."""
    t0 = time.perf_counter()
    for batch in batches:
        model.embed(batch)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--official-batches", type=int, default=2)
    ap.add_argument("--official-batch-size", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    a = ap.parse_args()

    from fmb.datasets.synthetic.dataset import open_dataset
    from fmb.plugins import registry
    from fmb_astroclip.retrain import load_pairs

    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp())
    dataset = open_dataset(size=a.n)
    pairs = load_pairs(dataset, 144)  # also generates the data set once, so neither side times that
    spec = registry().model("astroclip")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; synthetic size {a.n}, batch {a.batch_size}")

    small = registry().load_model(spec.name, weights="random", options={"size": "small"})
    fmb_embed(small, dataset, a.batch_size, a.workers)  # warm-up (first-use imports of the preprocessing)
    bare, fmb = float("inf"), float("inf")
    for _ in range(a.repeat):  # interleaved, so that machine load hits both alike
        bare = min(bare, bare_forward(small.net, pairs.images, pairs.spectra, a.batch_size))
        fmb = min(fmb, fmb_embed(small, dataset, a.batch_size, a.workers))
    batches = list(dataset.iter_batches(a.batch_size))
    model_only = min(timed_embed(small, batches) for _ in range(a.repeat))
    ratio = bare / fmb
    print(
        f"small: bare forward {a.n / bare:8.1f} obj/s ({bare:.2f} s); fmb embed {a.n / fmb:8.1f} obj/s "
        f"({fmb:.2f} s); throughput ratio {ratio:.3f} (target >= {TARGET_RATIO}) "
        f"{'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}"
    )
    print(f"RATIO small {ratio:.4f}")
    print(
        f"small: model.embed on already-read batches {a.n / model_only:8.1f} obj/s ({model_only:.2f} s); ratio "
        f"{bare / model_only:.3f} (the plugin's own overhead: preprocessing); the rest is FMB's embed stage "
        "(reading, prefetch thread, Parquet cache)"
    )

    if a.official_batches > 0:
        t0 = time.perf_counter()
        official = registry().load_model(spec.name, weights="random")
        print(f"official: built with random weights in {time.perf_counter() - t0:.1f} s")
        bs = a.official_batch_size
        batches = list(dataset.iter_batches(bs))[: a.official_batches]
        for k, batch in enumerate(batches):
            sl = slice(k * bs, (k + 1) * bs)
            t_bare = bare_forward(official.net, pairs.images[sl], pairs.spectra[sl], bs)
            t0 = time.perf_counter()
            official.embed(batch)
            t_fmb = time.perf_counter() - t0
            print(
                f"official batch {k} ({bs} objects): bare {t_bare:.2f} s ({t_bare / bs:.2f} s/object), "
                f"fmb embed {t_fmb:.2f} s ({t_fmb / bs:.2f} s/object), ratio {t_bare / t_fmb:.3f}"
            )
        with torch.inference_mode():
            x = pairs.images[:bs]
            t0 = time.perf_counter()
            official.net.image_encoder(x)
            t_img = time.perf_counter() - t0
            t0 = time.perf_counter()
            official.net.spectrum_encoder(pairs.spectra[:bs])
            t_spec = time.perf_counter() - t0
        print(f"official split per object: image {t_img / bs:.2f} s, spectrum {t_spec / bs:.2f} s")


if __name__ == "__main__":
    main()
