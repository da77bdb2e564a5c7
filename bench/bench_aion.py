"""AION embedding throughput: FMB's ``embed_dataset`` (what ``fmb embed`` runs) against a bare
codec + ``AION.encode`` loop over the same tensors, and the time per batch at a given size.

    python bench/bench_aion.py --size tiny --n 64 --batch 16      # overhead of FMB (target >= 0.9)
    python bench/bench_aion.py --size base --n 16 --batch 8       # base size on CPU, random weights

Both paths embed the three outputs (image, spectrum, joint) of every object with the same seeded
random weights; the bare loop starts from already-preprocessed tensors (so it excludes FMB's Arrow
decoding and resizing), and FMB's path includes writing the Parquet cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def bare_loop(comps, batches, mapping) -> float:
    """Seconds for codecs + three ``AION.encode`` passes + mean, per batch, on prepared tensors."""
    import torch
    from aion.modalities import DESISpectrum, HSCImage

    t0 = time.perf_counter()
    with torch.inference_mode():
        for img, bands, sp in batches:
            for lo in range(0, len(img), 16):
                s = slice(lo, lo + 16)
                ti = comps.image_codec.encode(HSCImage(flux=img[s].clone(), bands=bands))
                ts = comps.spectrum_codec.encode(
                    DESISpectrum(flux=sp[0][s], ivar=sp[1][s], mask=sp[2][s], wavelength=sp[3][s])
                )
                for inp in (
                    {mapping.token_key: ti},
                    {"tok_spectrum_desi": ts},
                    {mapping.token_key: ti, "tok_spectrum_desi": ts},
                ):
                    n_tok = sum(v.shape[1] for v in inp.values())
                    comps.model.encode(inp, num_encoder_tokens=n_tok).mean(1).numpy()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=("tiny", "base"))
    ap.add_argument("--n", type=int, default=64, help="objects (synthetic survey, 64x64 stamps, DESI grid)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2, help="best of N for each path")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    args = ap.parse_args()
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-aion-"))

    import torch

    from fmb.home import cache_dir
    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb_aion.bands import get_mapping
    from fmb_aion.model import AionModel
    from fmb_aion.preprocess import images_from_batch, spectra_from_batch
    from fmb_aion.weights import resolve

    ds = registry().load_dataset("synthetic", {"size": args.n, "chunk_size": min(args.n, 250)})
    for _ in ds.iter_batches(args.batch):  # generate and cache the data set before any timing
        pass
    mapping = get_mapping("hsc")
    t = time.perf_counter()
    comps = resolve("random", args.size, seed=0)
    print(
        f"build {args.size} (random): {time.perf_counter() - t:.1f} s; "
        f"{sum(p.numel() for p in comps.model.parameters()) / 1e6:.1f}M encoder-decoder params, "
        f"torch threads {torch.get_num_threads()}"
    )
    model = AionModel(registry().model("aion"), comps, {"size": args.size}, mapping)

    prepared = []
    for b in ds.iter_batches(args.batch):
        img, sp = images_from_batch(b, mapping.pixel_scale), spectra_from_batch(b)
        prepared.append(
            (
                torch.from_numpy(img.flux) * mapping.flux_scale,
                mapping.codec_bands(img.bands),
                (
                    torch.from_numpy(sp.flux),
                    torch.from_numpy(sp.ivar),
                    torch.from_numpy(sp.mask),
                    torch.from_numpy(sp.wavelength),
                ),
            )
        )

    embed_dataset(model, ds, batch_size=args.batch, workers=args.workers)  # warm-up (first-use imports)
    bare, fmb = [], []
    for _ in range(args.repeat):
        bare.append(bare_loop(comps, prepared, mapping))
        shutil.rmtree(cache_dir("embeddings"), ignore_errors=True)  # embed again (the data set stays cached)
        t = time.perf_counter()
        embed_dataset(model, ds, batch_size=args.batch, workers=args.workers)
        fmb.append(time.perf_counter() - t)
    b, f = min(bare), min(fmb)
    nb = -(-args.n // args.batch)
    print(f"{args.n} objects, batch {args.batch}, size {args.size}, best of {args.repeat}:")
    for name, v in (("bare codec+encode loop", b), ("fmb embed_dataset", f)):
        print(f"  {name:24s} {v:.2f} s  ({args.n / v:.2f} obj/s, {v / nb:.2f} s/batch, {v / args.n:.3f} s/obj)")
    print(f"  throughput ratio fmb/bare: {b / f:.3f}")
    print(f"RATIO {args.size} {b / f:.4f}")
    print(f"  projected for 2000 objects (fmb): {2000 * f / args.n / 60:.1f} min")


if __name__ == "__main__":
    main()
