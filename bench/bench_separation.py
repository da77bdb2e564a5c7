"""Does the default survey separate systems? The matrix of the two non-deep floors.

baseline and baseline-strong x {iforest, knn, lof, ecod, pca} x {image, spectrum, joint}, subspace (lof and
knn on groups of correlated columns, max percentile) x {image, spectrum, joint}, plus fusion
(each base detector, mode avg and geo; mode max with the crossmodal residual as a third component; and mode max
with the joint embedding's own cross-modal columns as a third component, ``consistency=true``)
and crossmodal (norm, knn and iforest on the residuals), on the default synthetic survey (2,000 objects,
seed 0; ``--seed 1`` for the check against overfitting one survey). Embeddings come from FMB's cache (embedded once per
model); detectors run through the same code as ``fmb run`` (``protocol.run.detect`` / ``detect_multi``)
and metrics through ``protocol.metrics.compute_metrics``. Prints the best AUROC and, per class, the best
recall within the top 5 % with the system that reaches it (goal: AUROC >= 0.90, every class >= 0.5).

Run: python bench/bench_separation.py [--size 2000] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

DETECTORS = ("iforest", "knn", "lof", "ecod", "pca")
OUTPUTS = ("image", "spectrum", "joint")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="+", default=["baseline", "baseline-strong"])
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    from fmb.plugins import registry
    from fmb.protocol.embed import embed_dataset
    from fmb.protocol.metrics import compute_metrics
    from fmb.protocol.run import RunConfig, detect, detect_multi, load_model, open_dataset, table_labels

    reg = registry()
    rows = []
    for model_name in args.models:
        cfg = RunConfig(model=model_name, detector="iforest", dataset_options={"size": args.size})
        ds = open_dataset(reg, "synthetic", {"size": args.size, "seed": args.seed})
        model = load_model(reg, cfg, "cpu")
        t0 = time.perf_counter()
        emb = embed_dataset(model, ds, batch_size=250)
        print(f"# {model_name}: embedded in {time.perf_counter() - t0:.1f}s", flush=True)
        labelled, y, cls = table_labels(emb.table)
        systems = []
        for det in DETECTORS:
            d = reg.detector(det).load()()
            for out in OUTPUTS:
                systems.append((f"{det} {out}", lambda d=d, out=out, emb=emb: detect(d, emb, out, args.seed)[0]))
        for base in ("lof", "knn"):
            d = reg.make_detector("subspace", {"base": base})
            for out in OUTPUTS:
                label = f"subspace {base} {out}"
                systems.append((label, lambda d=d, out=out, emb=emb: detect(d, emb, out, args.seed)[0]))
        for det in DETECTORS:
            fusions = (("avg", False, False), ("geo", False, False), ("max", True, False), ("max", False, True))
            for mode, cm, cons in fusions:
                f = reg.detector("fusion").load()(base=det, mode=mode, crossmodal=cm, consistency=cons)
                f.check_model(model.spec)
                label = f"fusion {det} {mode}" + ("+crossmodal" if cm else "") + ("+consistency" if cons else "")
                systems.append((label, lambda f=f, emb=emb: detect_multi(f, emb, args.seed)[0]))
        for base in ("norm", "knn", "iforest"):
            c = reg.detector("crossmodal").load()(base=base)
            systems.append((f"crossmodal {base}", lambda c=c, emb=emb: detect_multi(c, emb, args.seed)[0]))
        for name, fn in systems:
            s = fn()
            m = compute_metrics(s, y, cls, labelled)
            rows.append(
                {
                    "system": f"{model_name} {name}",
                    "auroc": m["auroc"],
                    "ap": m["average_precision"],
                    "per_class": {k: v["recall@5%"] for k, v in m["per_class"].items()},
                    "per_class_auroc": {k: v["auroc_vs_normal"] for k, v in m["per_class"].items()},
                }
            )
            print(
                f"{model_name:16s} {name:28s} AUROC {m['auroc']:.3f}  AP {m['average_precision']:.3f}  "
                + " ".join(f"{k}={v['recall@5%']:.2f}" for k, v in m["per_class"].items()),
                flush=True,
            )

    best = max(rows, key=lambda r: r["auroc"])
    print(f"\nbest AUROC {best['auroc']:.3f}  ({best['system']})")
    print("per class, best recall@5% and the system that reaches it:")
    for c in sorted(rows[0]["per_class"]):
        b = max(rows, key=lambda r: r["per_class"][c])
        a = max(rows, key=lambda r: r["per_class_auroc"][c] or 0.0)
        print(f"  {c:11s} {b['per_class'][c]:.2f}  {b['system']:44s} best class AUROC {a['per_class_auroc'][c]:.2f}")
    for model_name in args.models:
        mine = [r for r in rows if r["system"].startswith(model_name + " ")]
        b = max(mine, key=lambda r: r["auroc"])
        print(f"best {model_name}: AUROC {b['auroc']:.3f} ({b['system']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
