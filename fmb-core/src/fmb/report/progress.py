"""Progress of the report's steps: a rich bar in a terminal, plain lines elsewhere (logs, pipes, Slurm).

Plain mode writes ``report: <step>: <seconds> s (i/n)`` when a step ends, and ``report: <step> ...`` when a
step marked ``long`` (an embedding map, a gallery) starts, so a long report is never silent in a log.
``reporter=None`` (the Python API, tests) prints nothing; a quiet reporter (``-q``) neither.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Steps:
    """``with steps.step("embedding map of run x"): ...`` for each step of a report of ``total`` steps."""

    def __init__(self, reporter: Any | None, total: int) -> None:
        self.console = None if reporter is None or getattr(reporter, "quiet", False) else reporter.console
        self.total = max(int(total), 1)
        self.done = 0
        self._bar: Any = None
        self._task: Any = None
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> Steps:
        if self.console is not None and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("report: {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _line(self, text: str) -> None:
        if self.console is not None and self._bar is None:
            self.console.file.write(f"report: {text}\n")
            self.console.file.flush()

    @contextmanager
    def step(self, what: str, long: bool = False) -> Iterator[None]:
        """One step: shown while it runs, its duration kept in ``seconds`` (and written in plain mode)."""
        if self._bar is not None:
            self._bar.update(self._task, description=what)
        if long:
            self._line(f"{what} ...")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.seconds[what] = self.seconds.get(what, 0.0) + dt
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, completed=min(self.done, self.total))
            self._line(f"{what}: {dt:.1f} s ({self.done}/{self.total})")
