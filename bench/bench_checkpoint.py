"""Peak memory of reading an AstroCLIP Lightning checkpoint (``read_torch_file``), before and after.

Writes a synthetic ``astroclip.ckpt``-like file of ``--mb`` MB (float32 tensors in ``state_dict`` plus an
upstream object in ``hyper_parameters``, so that ``weights_only`` refuses it, as it refuses the official
file), then reads it in a fresh process per source tree and prints the growth of the peak resident set
(Linux: ``VmHWM`` reset after ``import torch`` through ``/proc/self/clear_refs``; elsewhere
``resource.getrusage(RUSAGE_SELF).ru_maxrss``) as a multiple of the file size.
Target: about 1x (the failed safe load is not held while the fallback reads the file again).

    git worktree add --detach /tmp/fmb-main main
    python bench/bench_checkpoint.py --before /tmp/fmb-main [--after .] [--mb 400]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import resource, sys, time
import torch
from fmb_astroclip.checkpoint import read_torch_file

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

try:  # reset the peak to the current RSS (Linux >= 4.0), so that importing torch does not count
    open("/proc/self/clear_refs", "w").write("5")
    base, hwm = status("VmRSS:"), lambda: status("VmHWM:")
except OSError:  # elsewhere: ru_maxrss (a peak since start; import peaks may hide part of the growth)
    base, hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, None
t0 = time.perf_counter()
obj = read_torch_file(sys.argv[1])
dt = time.perf_counter() - t0
peak = hwm() if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("PEAK", peak - base, dt, len(obj["state_dict"]))
"""


class UpstreamHead:
    """Stands for the upstream head objects the official file pickles (not on torch's allow-list)."""

    def __init__(self) -> None:
        self.temperature = 15.5


def write(path: Path, mb: int) -> int:
    import torch

    n = mb * 1024 * 1024 // 4 // 16
    state = {f"image_encoder.blocks.{i}.weight": torch.randn(n) for i in range(16)}
    torch.save({"state_dict": state, "hyper_parameters": {"image_encoder": UpstreamHead()}}, path)
    return path.stat().st_size


def measure(tree: Path, path: Path) -> tuple[float, float]:
    pp = os.pathsep.join(str(tree / p / "src") for p in ("fmb-core", "fmb-astroclip"))
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env={**os.environ, "PYTHONPATH": pp}, capture_output=True, text=True
    )
    for line in r.stdout.splitlines():
        if line.startswith("PEAK"):
            _, peak, dt, _ = line.split()
            return float(peak), float(dt)
    raise SystemExit(f"{tree}: {r.stderr.strip().splitlines()[-1:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=None, help="source tree of the baseline (e.g. a worktree of main)")
    ap.add_argument("--after", type=Path, default=HERE.parent, help="source tree measured (default: this one)")
    ap.add_argument("--mb", type=int, default=400, help="size of the synthetic checkpoint")
    a = ap.parse_args()
    print(f"load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "astroclip.ckpt"
        size = write(path, a.mb)
        print(f"synthetic checkpoint: {size / 2**20:.0f} MiB")
        trees = ([("before", a.before)] if a.before else []) + [("after", a.after)]
        for which, tree in trees:
            t0 = time.perf_counter()
            peak, dt = measure(tree.resolve(), path)
            print(
                f"{which:6s} peak RSS growth {peak / 2**20:7.0f} MiB = {peak / size:.2f}x the file; read {dt:.1f} s "
                f"(process {time.perf_counter() - t0:.1f} s)"
            )


if __name__ == "__main__":
    main()
