"""Prepare dataset batches in background threads while the model embeds (bounded look-ahead).

``workers=0`` reads inline; ``1`` streams the rows through one producer thread (at most ``DEPTH``
batches ahead); ``N >= 2`` reads blocks of rows in a pool of N threads (N + 1 blocks in flight).
Batches always come out in row order, so memory stays bounded whatever the data set size.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

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
    dataset: Dataset, batch_size: int, start: int, stop: int, workers: int = 1
) -> Iterator[pa.RecordBatch]:
    """``dataset.iter_batches(batch_size, start, stop)``, prepared by ``workers`` threads."""
    if workers <= 0:
        yield from dataset.iter_batches(batch_size, start=start, stop=stop)
    elif workers == 1:
        yield from _threaded(dataset, batch_size, start, stop)
    else:
        yield from _pooled(dataset, batch_size, start, stop, workers)


def _threaded(dataset: Dataset, batch_size: int, start: int, stop: int) -> Iterator[pa.RecordBatch]:
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
            for batch in dataset.iter_batches(batch_size, start=start, stop=stop):
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


def _pooled(dataset: Dataset, batch_size: int, start: int, stop: int, workers: int) -> Iterator[pa.RecordBatch]:
    block = max(batch_size, BLOCK_ROWS // batch_size * batch_size)
    blocks = iter([(lo, min(lo + block, stop)) for lo in range(start, stop, block)])

    def load(lo: int, hi: int) -> list[pa.RecordBatch]:
        return list(dataset.iter_batches(batch_size, start=lo, stop=hi))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fmb-prefetch")
    window: deque[Future] = deque()
    try:
        for _ in range(workers + 1):
            if (nxt := next(blocks, None)) is not None:
                window.append(pool.submit(load, *nxt))
        while window:
            batches = window.popleft().result()
            if (nxt := next(blocks, None)) is not None:
                window.append(pool.submit(load, *nxt))
            yield from batches
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
