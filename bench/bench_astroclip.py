"""AstroCLIP embedding throughput at any size: ``fmb embed`` against a bare loop of the same model work.

What is measured and how the ratio is taken: the convention shared by the embed benches (the docstring of
``bench/bench_embed_ratio.py``). For AstroCLIP:

- bare loop, per batch already read into memory: the plugin's preparation (``image_inputs``: g, r, z
  resampled to 0.262"/px and cropped/padded to the network's size, upstream ``ToRGB``; ``spectrum_inputs``:
  flux on the DESI grid; held against upstream's ``AstroClipCollator`` + ``ToRGB`` by
  ``fmb-astroclip/tests/test_golden.py``), then the image and spectrum encoders (backbone + head) and the
  joint vector (normalised sum of the unit vectors).
- fmb embed: ``embed_dataset`` on the same synthetic survey (generated once beforehand, not timed).
- forward only: the encoders over inputs prepared beforehand (the bare loop of earlier versions of this
  bench, which left the preparation out and so made FMB look slower than a user's own loop).

Sizes: ``small`` (2-layer, 64-wide; trains on a CPU) and ``official`` (the published architecture: ViT-L/12
image backbone at 144 px, 6-layer 768-wide SpecFormer, 1024-d heads), random weights built by the plugin's own
loader (``registry().load_model("astroclip", weights="random", options={"size": ...})``).

Run: python bench/bench_astroclip.py [--size small] [--n 256] [--batch-size 64] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import torch
from bench_embed_ratio import compare, surveys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small", choices=("small", "official"))
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", "--repeat", type=int, default=3, help="interleaved rounds (median ratio kept)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    a = ap.parse_args()
    os.environ.setdefault("FMB_HOME", tempfile.mkdtemp(prefix="fmb-bench-astroclip-"))

    import torch.nn.functional as F

    from fmb.home import cache_dir
    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.threads import limited
    from fmb_astroclip.preprocess import image_inputs, spectrum_inputs

    ds, warm = surveys(a.n, a.batch_size, chunked=False)

    with limited() as threads:
        t0 = time.perf_counter()
        m = registry().load_model("astroclip", weights="random", options={"size": a.size})
        net, size = m.net, m.net.cfg.image_size
        print(
            f"torch {torch.__version__}, {threads} threads (fmb.threads.limited, both sides); size {a.size} "
            f"({sum(p.numel() for p in net.parameters()) / 1e6:.0f}M params) built in "
            f"{time.perf_counter() - t0:.1f} s; synthetic size {a.n}, batch {a.batch_size}, "
            f"workers {a.workers if a.workers is not None else 'default'}",
            flush=True,
        )
        batches = list(ds.iter_batches(a.batch_size))

        def prepared(b):  # the plugin's preparation (upstream's collator + ToRGB), see the module docstring
            return image_inputs(b, size)[0], spectrum_inputs(b)[0]

        def passes(im, sp):
            with torch.inference_mode():
                image, spectrum = net.image_encoder(im), net.spectrum_encoder(sp)
                joint = F.normalize(F.normalize(image, dim=-1) + F.normalize(spectrum, dim=-1), dim=-1)
            return image.numpy(), spectrum.numpy(), joint.numpy()

        def fmb_embed(dataset=ds):
            shutil.rmtree(cache_dir("embeddings"), ignore_errors=True)  # embed again (the data set stays cached)
            embed_dataset(m, dataset, batch_size=a.batch_size, workers=a.workers)

        compare(a, batches, prepared, passes, fmb_embed, warm)


if __name__ == "__main__":
    main()
