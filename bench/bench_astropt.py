"""AstroPT embedding throughput at any size: ``fmb embed`` against a bare loop of the same model work.

What is measured and how the ratio is taken: the convention shared by the embed benches (the docstring of
``bench/bench_embed_ratio.py``). For AstroPT:

- bare loop, per batch already read into memory: the plugin's preparation (``image_inputs``: resampling to
  0.262"/px, the Legacy Survey viewer's RGB render, 16-px patches in spiral order; ``spectrum_inputs``:
  256-pixel spectrum patches with their wavelength positions; what astroPT's data pipeline does before its
  network, held against it by ``fmb-astropt/tests/test_golden.py``), then the passes FMB's outputs need
  (spectrum alone; image + spectrum joint, the image pooled from the joint pass's image tokens when the
  attention is causal, else an image pass) up to the embedding layer (``middle``), mean pooling.
- fmb embed: ``embed_dataset`` on the same toy data set (64-px 4-band stamps, 7,781-pixel spectra).
- forward only: the same passes over tokens prepared beforehand; ``--upstream`` adds astropt's own
  ``generate_embeddings`` on the joint sequence (runs every block).

Sizes: every name of ``fmb_astropt.config.SIZES`` (001M ... 2100M), random weights built by the plugin's own
loader (``registry().load_model("astropt", weights="random", options={"size": ...})``).

Run: python bench/bench_astropt.py [--size 001M] [--n 256] [--batch-size 64] [--rounds 5] [--workers N]
     [--stamp 64] [--npix 7781] [--upstream]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_embed_ratio import compare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="001M")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stamp", type=int, default=64)
    ap.add_argument("--npix", type=int, default=7781)
    ap.add_argument("--rounds", "--repeat", type=int, default=5, help="interleaved rounds (median ratio kept)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
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
    warm = ToyDataset(size=max(2, a.batch_size), stamp=a.stamp, npix=a.npix, seed=1)

    with registered_plugin(toy_dataset_plugin(), "toy-dataset"), limited() as threads:
        t0 = time.perf_counter()
        m = registry().load_model(spec.name, weights="random", options={"size": a.size})
        n_layer, n_embd = m.net.config.n_layer, m.net.config.n_embd
        params = sum(p.numel() for p in m.net.parameters()) / 1e6
        print(
            f"torch {torch.__version__}, {threads} threads (fmb.threads.limited, both sides); size {a.size} "
            f"({n_layer} layers, {n_embd} wide, {params:.0f}M params, embedding layer {m.layer}) built in "
            f"{time.perf_counter() - t0:.1f} s; {a.n} objects, {a.stamp}px 4-band images, {a.npix}-pixel spectra, "
            f"batch {a.batch_size}, workers {a.workers if a.workers is not None else 'default'}",
            flush=True,
        )
        causal = m.net.config.attn_type == "causal"
        batches = list(ds.iter_batches(a.batch_size))

        def passes(ti, pi, ts, ps):
            with torch.inference_mode():
                spectrum = pool(hidden_states(m.net, [("spectra", ts, ps)], m.layer), "mean").numpy()
                h = hidden_states(m.net, [("images", ti, pi), ("spectra", ts, ps)], m.layer)
                joint = pool(h, "mean").numpy()
                if causal:
                    image = pool(h[:, : ti.shape[1]], "mean").numpy()
                else:
                    image = pool(hidden_states(m.net, [("images", ti, pi)], m.layer), "mean").numpy()
            return image, spectrum, joint

        def prepared(b):  # the plugin's preparation (astroPT's data pipeline), see the module docstring
            return (*m.image_inputs(b), *m.spectrum_inputs(b)[:2])

        def fmb_embed(dataset=ds):
            with tempfile.TemporaryDirectory() as home:
                os.environ["FMB_HOME"] = home
                embed_dataset(m, dataset, batch_size=a.batch_size, workers=a.workers)

        tokens = [prepared(b) for b in batches]  # for upstream's own call, below

        def upstream():
            with torch.no_grad():
                for ti, pi, ts, ps in tokens:
                    m.net.generate_embeddings(
                        {"images": ti, "images_positions": pi, "spectra": ts, "spectra_positions": ps}
                    )

        extra = {"astropt generate_embeddings (all blocks)": upstream} if a.upstream else {}
        compare(a, batches, prepared, passes, fmb_embed, warm, extra)


if __name__ == "__main__":
    main()
