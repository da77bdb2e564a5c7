"""Thread pools of every compute stage, set deliberately (one owner for the concept).

numpy/scipy BLAS, scikit-learn's OpenMP, faiss's OpenMP and torch each start their own pool, by
default one thread per core *each*; nested or side by side they oversubscribe the machine (on a
loaded 2-core VM limiting BLAS/OpenMP to one thread made each probe fit 5-10x faster). Every stage
(detect, probe, report map, embed) runs inside :func:`limited`, which caps all of them at once with
threadpoolctl (a kept library that knows every BLAS/OpenMP runtime loaded in the process) and sets
torch's intra-op threads when torch is already imported.

How many: ``--threads N`` on the ``fmb`` command (which sets the environment variable), else the
environment variable ``FMB_THREADS``, else ``OMP_NUM_THREADS`` (the variable users and Slurm scripts already set
to cap every OpenMP program; its first entry, as the OpenMP spec reads a nested list), else the CPUs this process
may run on (``os.sched_getaffinity``, which honours Slurm's and taskset's CPU masks, unlike ``os.cpu_count``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from fmb.errors import UsageError

ENV = "FMB_THREADS"
OMP_ENV = "OMP_NUM_THREADS"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def n_threads(override: int | None = None) -> int:
    """The thread count to use: ``override``, else ``$FMB_THREADS``, else the first entry of ``$OMP_NUM_THREADS``,
    else :func:`available_cpus`.

    Raises UsageError (one line naming the variable) on a value that is not a positive integer.
    """
    if override is not None:
        value, where = override, "threads"
    elif os.environ.get(ENV, "").strip():
        value, where = os.environ[ENV].strip(), ENV
    elif os.environ.get(OMP_ENV, "").strip():
        value, where = os.environ[OMP_ENV].split(",")[0].strip(), OMP_ENV
    else:
        return available_cpus()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise UsageError(f"{where} must be a positive integer, got {value!r}")
    return n


@contextmanager
def limited(n: int | None = None) -> Iterator[int]:
    """Run the block with BLAS, OpenMP (scikit-learn, faiss) and torch capped at :func:`n_threads` ``(n)``
    threads; restores the previous settings on exit. Yields the count used."""
    from threadpoolctl import threadpool_limits

    k = n_threads(n)
    torch = sys.modules.get("torch")  # never import torch here: fmb-core starts without it
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=k):
        if torch is not None:
            torch.set_num_threads(k)
        try:
            yield k
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)
