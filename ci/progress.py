"""Progress for long steps, on stderr, so stdout stays one JSON document under `--json`."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream
        self.started = time.monotonic()

    def _write(self, text: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stderr
            print(text, file=stream, flush=True)

    def step(self, message: str) -> None:
        """A new phase: `[  12s] message`."""
        self._write(f"[{time.monotonic() - self.started:5.0f}s] {message}")

    def info(self, message: str) -> None:
        self._write(f"        {message}")

    def metric(self, name: str, value: float, where: str = "") -> None:
        self._write(f"        metric {name}={value:.6g}" + (f" ({where})" if where else ""))

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")


QUIET = Progress(enabled=False)
