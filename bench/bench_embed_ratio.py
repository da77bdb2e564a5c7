"""``fmb embed`` / bare forward loop, for any model size; optionally before and after, side by side in one run.

What every embed bench measures (bench_astroclip.py, bench_astropt.py, bench_aion.py; the helpers here are
shared by them, so that the convention has one owner):

- **bare loop**: what a user's own loop does, on the same objects: the data set's batches already read
  into memory (reading is not timed), the inputs prepared as the model's authors' code prepares them (the
  plugin's preparation functions, held against upstream's collators / data pipelines by the plugins'
  ``tests/test_golden.py``), the network's forward passes for each output (image, spectrum, joint) and the
  pooling, under ``torch.inference_mode``.
- **fmb embed**: ``fmb.protocol.embed.embed_dataset`` into an empty embedding cache (what ``fmb embed``
  runs): reading the data set, the loader thread(s), the same preparation (``model.prepare``), the forward
  passes (``model.embed_prepared``), Arrow/Parquet conversion and writes, hashing, the manifest.
- both at the same batch size, fp32 and thread count (both inside :func:`fmb.threads.limited`, i.e.
  ``FMB_THREADS`` / ``OMP_NUM_THREADS`` / the CPUs), the model built once (random weights: throughput
  does not depend on weight values) and shared.
- a warm-up batch through each side first (first-use imports, allocator), excluded from timing.
- ``--rounds`` rounds, interleaved, in a rotated order each round, so that the load of a shared machine
  hits every variant alike. Per round the throughput ratio ``fmb embed / bare`` = bare seconds / fmb
  seconds, in wall seconds and in CPU seconds of all threads of the process (``time.process_time``: what
  load noise changes least); the median and range over rounds are printed with ``os.getloadavg()``.
- beside it, "forward only": the forward passes over inputs prepared beforehand (what the ratio would be
  against a loop that leaves the preparation out).

Each bench prints ``RATIO <size> <wall median>``, ``CPURATIO <size> <cpu median>``, ``FORWARDONLYRATIO
<size> <wall> (cpu <cpu>)``, ``PEROBJ <size> <bare wall s/object> <bare cpu s/object>`` and ``LOAD <1-min
load, min-max over rounds>``. Target: ratio >= 0.9 at every size.

This script runs the benches for the sizes asked (``--sizes``), each size with an object count, batch size
and rounds scaled to its cost (:data:`SCALE`; a big size finishes in a few minutes on 2 cores), once per
source tree; with ``--before`` it alternates the trees (A B A B ...). The bench scripts are the same for both
trees (this folder's); only the ``fmb`` and plugin packages imported differ (``PYTHONPATH`` of each tree's
``*/src``).

    python bench/bench_embed_ratio.py --sizes all                       # every size of every model
    python bench/bench_embed_ratio.py --sizes astropt:095M,aion:base    # some sizes
    python bench/bench_embed_ratio.py --before /tmp/fmb-main [--rounds 2] [--workers N]   # small sizes, A/B
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("fmb-core", "fmb-astropt", "fmb-astroclip", "fmb-aion")
TARGET_RATIO = 0.9
FMB, BARE, FORWARD = "fmb embed", "bare (prepare+forward)", "forward only"

#: model -> bench script; size -> (objects, batch size, rounds), scaled so that each size takes at most a few
#: minutes on a loaded 2-core machine (one torch thread). Sizes as the plugins name them.
SCRIPTS = {"astroclip": "bench_astroclip.py", "astropt": "bench_astropt.py", "aion": "bench_aion.py"}
SCALE: dict[str, dict[str, tuple[int, int, int]]] = {
    "astroclip": {"small": (256, 64, 3), "official": (8, 4, 2)},
    "astropt": {
        "001M": (256, 64, 5),
        "005M": (128, 32, 3),
        "010M": (128, 32, 3),
        "020M": (64, 16, 3),
        "070M": (16, 8, 2),
        "095M": (16, 8, 2),
        "300M": (8, 4, 2),
        "700M": (4, 2, 2),
        "2100M": (2, 1, 1),
    },
    "aion": {"tiny": (64, 16, 3), "base": (4, 2, 2)},
}
SMALL = "astroclip:small,astropt:001M,aion:tiny"
#: sizes that ``all`` / ``model:all`` leave out (name them to run them): astropt 2100M's random build holds two fp32
#: copies of 2.1 G parameters, about 16 GB
EXPLICIT_ONLY = {("astropt", "2100M")}


# ---------------------------------------------------------------- helpers shared by the embed benches


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved(
    runs: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, list[tuple[float, float]]], list]:
    """``rounds`` rounds of every run, in a rotated order each round; per run the (wall, cpu) seconds of each
    round, and the 1-minute load after each round."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    names, loads = list(runs), []
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            times[k].append(timed(runs[k]))
        loads.append(os.getloadavg()[0])
        w = {k: v[-1][0] for k, v in times.items()}
        print(f"round {r}: load {loads[-1]:.2f}; " + ", ".join(f"{k} {v:.2f} s" for k, v in w.items()), flush=True)
    return times, loads


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f}, n={len(values)})"


def report(size: str, n: int, times: dict[str, list[tuple[float, float]]], loads: list[float]) -> float:
    """Print every run's medians, the ratios of ``fmb embed`` to the bare loop and to the forward passes alone
    (wall and CPU, per round, median and range) and the machine-readable lines; returns the wall ratio."""
    for k, v in times.items():
        wm, cm = statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)
        print(f"{size} {k:42s} wall {wm:8.3f} s ({n / wm:8.2f} obj/s)  cpu {cm:8.3f} s  (medians)")
    ratios: dict[tuple[str, int], float] = {}
    for base in (BARE, FORWARD):
        if base not in times:
            continue
        for i, what in ((0, "wall"), (1, "cpu")):
            per = [b[i] / f[i] for b, f in zip(times[base], times[FMB])]
            ratios[base, i] = statistics.median(per)
            print(f"throughput ratio {FMB} / {base} ({what}): {spread(per)}")
    wall = ratios[BARE, 0]
    print(f"target >= {TARGET_RATIO} (against the bare loop, wall): {'PASS' if wall >= TARGET_RATIO else 'FAIL'}")
    print(f"RATIO {size} {wall:.4f}")
    print(f"CPURATIO {size} {ratios[BARE, 1]:.4f}")
    if (FORWARD, 0) in ratios:
        print(f"FORWARDONLYRATIO {size} {ratios[FORWARD, 0]:.4f} (cpu {ratios[FORWARD, 1]:.4f})")
    bw = statistics.median(t[0] for t in times[BARE]) / n
    bc = statistics.median(t[1] for t in times[BARE]) / n
    print(f"PEROBJ {size} {bw:.4f} {bc:.4f}")
    print(f"LOAD {min(loads):.2f}-{max(loads):.2f}")
    return wall


def surveys(n: int, batch_size: int, chunked: bool = False) -> tuple[object, object]:
    """The timed synthetic survey (``n`` objects, seed 0) and the warm-up one (one batch, seed 1), both
    generated and cached before any timing. ``chunked``: shards of at most 250 objects (AION's bench)."""
    from fmb.plugins import registry

    out = []
    for seed, size in enumerate((n, max(2, batch_size))):
        opts = {"size": size, "seed": seed, **({"chunk_size": min(size, 250)} if chunked else {})}
        ds = registry().load_dataset("synthetic", opts)
        for _ in ds.iter_batches(batch_size):  # generate and cache it before any timing
            pass
        out.append(ds)
    return out[0], out[1]


def compare(
    a: argparse.Namespace,
    batches: list,
    prepared: Callable,
    passes: Callable,
    fmb_embed: Callable,
    warm: object,
    extra: dict[str, Callable[[], object]] | None = None,
) -> float:
    """The measurement every embed bench makes (one owner): ``fmb embed`` (``fmb_embed()``) against the bare
    loop (``passes(*prepared(batch))`` for each of ``batches``: the authors' preparation and the forward
    passes) and the forward passes alone on inputs prepared beforehand, plus any ``extra`` runs; one
    warm-up batch and one warm-up embed (of ``warm``) are not timed; ``a.rounds`` interleaved rounds, then
    :func:`report` (``a.size``, ``a.n``). Returns the wall ratio against the bare loop."""
    inputs = [prepared(b) for b in batches]

    def bare() -> None:
        for b in batches:
            passes(*prepared(b))

    def forward_only() -> None:
        for x in inputs:
            passes(*x)

    passes(*prepared(batches[0]))  # warm-up batch (first-use imports, allocator), not timed
    fmb_embed(warm)
    times, loads = interleaved({FMB: fmb_embed, BARE: bare, FORWARD: forward_only, **(extra or {})}, a.rounds)
    return report(a.size, a.n, times, loads)


# ---------------------------------------------------------------- the driver


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_sizes(text: str) -> list[tuple[str, str]]:
    """``all`` or ``model:size,...`` (``model:all`` = every size of it; a bare model name = all its sizes); ``all``
    leaves out :data:`EXPLICIT_ONLY`."""
    out: list[tuple[str, str]] = []
    for item in [s.strip() for s in text.split(",") if s.strip()]:
        if item == "all":
            out += [(m, s) for m in SCALE for s in SCALE[m] if (m, s) not in EXPLICIT_ONLY]
            continue
        model, _, size = item.partition(":")
        if model not in SCALE:
            raise SystemExit(f"--sizes: unknown model {model!r} (known: {', '.join(SCALE)})")
        if size in ("", "all"):
            out += [(model, s) for s in SCALE[model] if (model, s) not in EXPLICIT_ONLY]
        elif size in SCALE[model]:
            out.append((model, size))
        else:
            raise SystemExit(f"--sizes: unknown {model} size {size!r} (known: {', '.join(SCALE[model])})")
    return list(dict.fromkeys(out))


def run(tree: Path, model: str, size: str, rounds: int | None, workers: int | None) -> dict[str, str] | None:
    n, batch, r = SCALE[model][size]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / p / "src") for p in PACKAGES)}
    env["HF_HUB_OFFLINE"] = "1"
    cmd = [sys.executable, str(HERE / SCRIPTS[model]), "--size", size, "--n", str(n), "--batch-size", str(batch)]
    cmd += ["--rounds", str(rounds or r)] + (["--workers", str(workers)] if workers is not None else [])
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    got = {"seconds": f"{time.perf_counter() - t0:.0f}", "n": str(n), "batch": str(batch), "rounds": str(rounds or r)}
    for line in res.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("RATIO", "CPURATIO", "FORWARDONLYRATIO", "PEROBJ"):
            got[key] = rest.split(" ", 1)[1]
        elif key == "LOAD":
            got[key] = rest
    if "RATIO" not in got:
        tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
        print(f"  {tree}: {model} {size} failed (rc {res.returncode}): {tail}")
        return None
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SMALL, help=f"all, or model:size,... (default {SMALL}); model:all")
    ap.add_argument("--before", type=Path, default=None, help="source tree of a baseline (e.g. a worktree of main)")
    ap.add_argument("--after", default=HERE.parent, type=Path, help="source tree measured (default: this one)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each bench per tree (A/B alternations)")
    ap.add_argument("--bench-rounds", type=int, default=None, help="interleaved rounds inside a bench (default SCALE)")
    ap.add_argument("--workers", type=int, default=None, help="loader threads of fmb embed (default: FMB's)")
    a = ap.parse_args()
    sizes = parse_sizes(a.sizes)
    trees = [("before", a.before), ("after", a.after)] if a.before else [("this", a.after)]
    t0 = time.perf_counter()
    print(
        f"load before {load()}; trees {[str(t.resolve()) for _, t in trees]}; workers={a.workers}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} FMB_THREADS={os.environ.get('FMB_THREADS')}"
    )
    got: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for model, size in sizes:
        for _ in range(a.rounds):
            for which, tree in trees:
                r = run(tree.resolve(), model, size, a.bench_rounds, a.workers)
                if r is not None:
                    got.setdefault((model, size, which), []).append(r)
                print(f"  {model} {size} {which}: {r}  (load {load()})", flush=True)
    print(
        "\n| model | size | tree | objects / batch / rounds | ratio wall | ratio CPU | vs forward only | "
        "bare s/object (wall, CPU) | load | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, size in sizes:
        for which, _ in trees:
            for r in got.get((model, size, which), []):
                print(
                    f"| {model} | {size} | {which} | {r['n']} / {r['batch']} / {r['rounds']} | {r['RATIO']} | "
                    f"{r.get('CPURATIO', '-')} | {r.get('FORWARDONLYRATIO', '-')} | {r.get('PEROBJ', '-')} | "
                    f"{r.get('LOAD', '-')} | {r['seconds']} |"
                )
    if a.before:
        print(f"\n{'model size':20s} {'before':>22s} {'after':>22s}   (median [range] of the wall ratio)")
        for model, size in sizes:
            cells = []
            for which in ("before", "after"):
                v = [float(r["RATIO"]) for r in got.get((model, size, which), [])]
                cells.append("-" if not v else f"{statistics.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]")
            print(f"{model + ' ' + size:20s} {cells[0]:>22s} {cells[1]:>22s}")
    print(f"load after {load()}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
