"""Prepare dataset batches in background threads while the model embeds (bounded look-ahead).

The loader reads each batch and, given ``prepare`` (a model's :meth:`~fmb.models.base.Model.prepare`:
decoding, preprocessing, tokenising), prepares it too, so that this host-side work overlaps the
previous batch's forward pass (on a GPU the forward pass then waits on nothing but the copy).

``workers=0`` reads inline; ``1`` streams the rows through one producer thread (at most ``DEPTH``
batches ahead); ``N >= 2`` reads blocks of rows in a pool of N threads (N + 1 blocks in flight).
Batches always come out in row order, so memory stays bounded whatever the data set size.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from fmb.datasets.base import Dataset

#: batches queued ahead of the model per worker
DEPTH = 2
#: rows read per pool job (rounded to whole batches): large enough that re-reading a storage chunk
#: at block edges costs little, small enough that workers + 1 blocks in flight stay modest
BLOCK_ROWS = 512
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch_batches(
    dataset: Dataset,
    batch_size: int,
    start: int,
    stop: int,
    workers: int = 1,
    prepare: Callable[[pa.RecordBatch], Any] | None = None,
) -> Iterator[Any]:
    """``dataset.iter_batches(batch_size, start, stop)``, read by ``workers`` threads (0: inline). With
    ``prepare``, yields ``(batch, prepare(batch))`` pairs, prepared in the same threads."""
    batches = _source(dataset, batch_size, prepare)
    if workers <= 0:
        yield from batches(start, stop)
    elif workers == 1:
        yield from _threaded(batches, start, stop)
    else:
        yield from _pooled(batches, batch_size, start, stop, workers)


def _source(
    dataset: Dataset, batch_size: int, prepare: Callable[[pa.RecordBatch], Any] | None
) -> Callable[[int, int], Iterator[Any]]:
    def batches(lo: int, hi: int) -> Iterator[Any]:
        for batch in dataset.iter_batches(batch_size, start=lo, stop=hi):
            yield batch if prepare is None else (batch, prepare(batch))

    return batches


def _threaded(batches: Callable[[int, int], Iterator[Any]], start: int, stop: int) -> Iterator[Any]:
    q: queue.Queue = queue.Queue(maxsize=DEPTH)
    halt = threading.Event()

    def put(item: object) -> bool:
        while not halt.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches(start, stop):
                if not put(batch):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="fmb-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        halt.set()
        thread.join(timeout=10)


def _pooled(
    batches: Callable[[int, int], Iterator[Any]], batch_size: int, start: int, stop: int, workers: int
) -> Iterator[Any]:
    block = max(batch_size, BLOCK_ROWS // batch_size * batch_size)
    blocks = iter([(lo, min(lo + block, stop)) for lo in range(start, stop, block)])

    def load(lo: int, hi: int) -> list[Any]:
        return list(batches(lo, hi))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fmb-prefetch")
    window: deque[Future] = deque()
    try:
        for _ in range(workers + 1):
            if (nxt := next(blocks, None)) is not None:
                window.append(pool.submit(load, *nxt))
        while window:
            ready = window.popleft().result()
            if (nxt := next(blocks, None)) is not None:
                window.append(pool.submit(load, *nxt))
            yield from ready
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
