"""What the benchmarks share: how a figure is timed (run them as scripts: `python bench/bench_x.py`)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The median wall time of `repeat` calls of `fn`: steadier than the mean on a shared machine."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def mlops_process_seconds(argv: list[str], tree: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `mlops <argv>` in a fresh process, from `tree`'s own sources.

    CPU time (user + system of the child) is what the command costs on an idle core; wall time
    also counts waiting for a CPU, so it grows with whatever else the machine runs.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ci.cli", *argv], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{tree}: mlops {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
