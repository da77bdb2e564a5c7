"""AION embedding throughput at any size: ``fmb embed`` against a bare codec + ``AION.encode`` loop.

What is measured and how the ratio is taken: the convention shared by the embed benches (the docstring of
``bench/bench_embed_ratio.py``). For AION:

- bare loop, per batch already read into memory: the plugin's preparation (``images_from_batch``: stamps
  resampled to the codec's survey pixel scale, 96 px; ``spectra_from_batch``: cleaned flux, ivar, mask,
  wavelength; the band mapping's flux scale), then what AION's own examples run: the image and spectrum
  codecs' ``encode`` and three ``AION.encode`` passes (image tokens, spectrum tokens, both), mean over the
  encoder tokens, in chunks of 16 rows as FMB runs them.
- fmb embed: ``embed_dataset`` on the same synthetic survey (generated once beforehand, not timed).
- forward only: the codecs and encoder passes over inputs prepared beforehand (the bare loop of earlier
  versions of this bench, which left the preparation out).

Sizes: the plugin's ``tiny`` (every token shape, dim 64) and ``base`` (AION-1 base: 12 + 12 layers, 768 wide,
full codecs), random weights built by the plugin's own loader
(``registry().load_model("aion", weights="random", options={"size": ...})``). The plugin has no
random-weight architecture for the published ``large`` / ``xlarge`` (those come only as checkpoints with
their own config.json).

    python bench/bench_aion.py [--size tiny] [--n 64] [--batch-size 16] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from bench_embed_ratio import compare, surveys

CHUNK = 16  # rows per codec / encoder call, as fmb_aion.model.MICRO_BATCH


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=("tiny", "base"))
    ap.add_argument("--n", type=int, default=64, help="objects (synthetic survey, 64x64 stamps, DESI grid)")
    ap.add_argument("--batch-size", "--batch", type=int, default=16)
    ap.add_argument("--rounds", "--repeat", type=int, default=3, help="interleaved rounds (median ratio kept)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    a = ap.parse_args()
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-aion-"))

    import torch
    from aion.modalities import DESISpectrum, HSCImage

    from fmb.home import cache_dir
    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.threads import limited
    from fmb_aion.preprocess import images_from_batch, spectra_from_batch

    ds, warm = surveys(a.n, a.batch_size, chunked=True)

    with limited() as threads:
        t0 = time.perf_counter()
        m = registry().load_model("aion", weights="random", options={"size": a.size})
        print(
            f"torch {torch.__version__}, {threads} threads (fmb.threads.limited, both sides); size {a.size} "
            f"({sum(p.numel() for p in m.aion.parameters()) / 1e6:.1f}M encoder-decoder params) built in "
            f"{time.perf_counter() - t0:.1f} s; synthetic size {a.n}, batch {a.batch_size}, "
            f"workers {a.workers if a.workers is not None else 'default'}",
            flush=True,
        )
        batches = list(ds.iter_batches(a.batch_size))
        mapping = m.mapping_for(batches[0])

        def prepared(b):  # the plugin's preparation, see the module docstring
            img, sp = images_from_batch(b, mapping.pixel_scale), spectra_from_batch(b)
            spectra = tuple(torch.from_numpy(x) for x in (sp.flux, sp.ivar, sp.mask, sp.wavelength))
            return torch.from_numpy(img.flux) * mapping.flux_scale, mapping.codec_bands(img.bands), spectra

        def passes(img, bands, sp):
            out = []
            with torch.inference_mode():
                for lo in range(0, len(img), CHUNK):
                    s = slice(lo, lo + CHUNK)
                    ti = m.image_codec.encode(HSCImage(flux=img[s].clone(), bands=bands))  # encode writes into it
                    flux, ivar, mask, wave = (x[s] for x in sp)
                    ts = m.spectrum_codec.encode(DESISpectrum(flux=flux, ivar=ivar, mask=mask, wavelength=wave))
                    for inp in (
                        {mapping.token_key: ti},
                        {"tok_spectrum_desi": ts},
                        {mapping.token_key: ti, "tok_spectrum_desi": ts},
                    ):
                        n_tok = sum(v.shape[1] for v in inp.values())
                        out.append(m.aion.encode(inp, num_encoder_tokens=n_tok).mean(1).numpy())
            return out

        def fmb_embed(dataset=ds):
            shutil.rmtree(cache_dir("embeddings"), ignore_errors=True)  # embed again (the data set stays cached)
            embed_dataset(m, dataset, batch_size=a.batch_size, workers=a.workers)

        compare(a, batches, prepared, passes, fmb_embed, warm)


if __name__ == "__main__":
    main()
