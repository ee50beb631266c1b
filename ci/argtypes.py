"""Types for numeric command-line flags: a number that is finite and in range, or exit 2.

`float("nan")` and `float("inf")` parse, and NaN passes every `<` check; a poll interval of NaN
or a tolerance of infinity would be taken silently. Each flag says its range once, here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(lo: float = 0.0, hi: float = math.inf, *, lo_open: bool = False, integer: bool = False) -> Callable:
    """An argparse `type`: a finite number in [lo, hi] (or (lo, hi] with lo_open)."""

    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "whole number" if integer else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < lo or (lo_open and value == lo) or value > hi:
            low = f"({lo:g}" if lo_open else f"[{lo:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is outside {low}, {hi:g}]")
        return value

    return parse


SECONDS = number(0.0, 7 * 24 * 3600.0, lo_open=True)  # an interval: 0 would spin
WAIT = number(0.0, 7 * 24 * 3600.0)  # how long to wait: 0 means look once
HOURS = number(0.0, 24 * 366.0)  # 0 means all
FRACTION = number(0.0, 1.0)
TOLERANCE = number(0.0, 1e6)
ROWS = number(1, 10_000_000, integer=True)
