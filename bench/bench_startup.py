"""Start-up cost of the CLI: `fmb --help` and `fmb plugins --json` against `python -c "import click"`.

Target: under 0.3 s more than importing click, with every plugin installed.
Run: python bench/bench_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    n = ap.parse_args().repeat
    fmb = shutil.which("fmb") or sys.exit("fmb is not on PATH: pip install -r requirements.txt")
    base, base_med = best_of([sys.executable, "-c", "import click"], n)
    print(f"python -c 'import click'   best {base:.3f} s  median {base_med:.3f} s")
    for args in (["--help"], ["plugins", "--json"]):
        best, med = best_of([fmb, *args], n)
        extra = best - base
        verdict = "OK" if extra < TARGET_S else "OVER TARGET"
        print(
            f"fmb {' '.join(args):<18} best {best:.3f} s  median {med:.3f} s  "
            f"extra {extra:+.3f} s (target < {TARGET_S} s, ratio {best / base:.2f}x): {verdict}"
        )


if __name__ == "__main__":
    main()
