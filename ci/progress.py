"""Progress for long steps, on stderr, so stdout stays one JSON document under `--json`.

The one way `ci/` reports progress. Lines (`step`, `info`, `metric`, `warn`) read the same
everywhere; uploads, downloads and job following are `task`s, which draw a `rich` progress bar
when stderr is a terminal and, anywhere else (CI logs, pipes, tests), print their plain line and
nothing more, so logs stay line-oriented.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Task:
    """A running task: `advance` by units done, `describe` with what it is doing now."""

    def __init__(self, bar: Any = None, task_id: Any = None):
        self._bar, self._id = bar, task_id

    def advance(self, amount: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._id, amount)

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._id, description=text)


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream
        self.started = time.monotonic()
        self._bar: Any = None  # the live rich display while a task runs on a terminal

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:  # above the bar, which stays at the bottom
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self._out(), flush=True)

    def step(self, message: str) -> None:
        """A new phase: `[  12s] message`."""
        self._write(f"[{time.monotonic() - self.started:5.0f}s] {message}")

    def info(self, message: str) -> None:
        self._write(f"        {message}")

    def metric(self, name: str, value: float, where: str = "") -> None:
        self._write(f"        metric {name}={value:.6g}" + (f" ({where})" if where else ""))

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")

    @contextmanager
    def task(self, description: str, total: float | None = None, *, announce: bool = True) -> Iterator[Task]:
        """An upload, a download or a job being followed: a bar (a spinner without `total`) on a
        terminal; elsewhere the `step` line `description` (none with announce=False) and nothing else."""
        if not (self.enabled and self._bar is None and self._out().isatty()):
            if announce:
                self.step(description)
            yield Task()
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
        if total is not None:
            columns[2:2] = [BarColumn(), MofNCompleteColumn()]
        self._bar = Bar(*columns, console=Console(file=self._out()), transient=False)
        try:
            with self._bar:
                yield Task(self._bar, self._bar.add_task(description, total=total))
        finally:
            self._bar = None


QUIET = Progress(enabled=False)
