"""Types for numeric command-line flags: a number that is finite and in range, or exit 2.

`float("nan")` and `float("inf")` parse, and NaN passes every `<` check; a poll interval of NaN
or a tolerance of infinity would be taken silently. Each flag says its range once, here.
"""

from __future__ import annotations

import math
from typing import Any

import click


class Number(click.ParamType):
    """A finite number in [lo, hi] (or (lo, hi] with lo_open); `name` is the metavar in --help."""

    def __init__(
        self, name: str, lo: float = 0.0, hi: float = math.inf, *, lo_open: bool = False, integer: bool = False
    ):
        self.name = name
        self.lo, self.hi, self.lo_open, self.integer = lo, hi, lo_open, integer

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | int:
        text = value if isinstance(value, str) else str(value)  # a default is checked like any other value
        try:
            number = int(text) if self.integer else float(text)
        except ValueError:
            kind = "whole number" if self.integer else "number"
            self.fail(f"{text!r} is not a {kind}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{text!r} is not a finite number", param, ctx)
        if number < self.lo or (self.lo_open and number == self.lo) or number > self.hi:
            low = f"({self.lo:g}" if self.lo_open else f"[{self.lo:g}"
            self.fail(f"{text!r} is outside {low}, {self.hi:g}]", param, ctx)
        return number


SECONDS = Number("seconds", 0.0, 7 * 24 * 3600.0, lo_open=True)  # an interval: 0 would spin
WAIT = Number("seconds", 0.0, 7 * 24 * 3600.0)  # how long to wait: 0 means look once
HOURS = Number("hours", 0.0, 24 * 366.0)  # 0 means all
FRACTION = Number("fraction", 0.0, 1.0)
TOLERANCE = Number("tolerance", 0.0, 1e6)
ROWS = Number("rows", 1, 10_000_000, integer=True)
