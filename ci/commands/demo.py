"""`mlops demo`: the whole lifecycle on this machine, against an emulator on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ci.commands import argtypes
from ci.commands.framework import Params, command, step
from ci.commands.options import json_option
from ci.progress import Progress


@command(
    "demo",
    "the whole lifecycle on this machine against an emulator on loopback; ends with an HTML report",
    "Starts moto on 127.0.0.1, provisions the local stack, trains (local runner, small data), evaluates, registers, "
    "approves, promotes, deploys, serves traffic through ml.serve with data capture, detects drift and raises the "
    "alert, then writes an HTML report.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path(".mlops/demo-report"),
    help="folder for the report (default .mlops/demo-report, which git ignores)",
)
@click.option("--rows", type=argtypes.ROWS, default=2000, help="synthetic rows to train on (default 2000)")
@json_option("print a JSON summary on stdout")
@step
def demo(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.emulator.demo import run_demo

    result = run_demo(out_dir=args.out, rows=args.rows, progress=progress, keep_server=False)
    return result, f"demo finished in {result['seconds']:.0f} s; report: {result['report']}"


COMMANDS = (demo,)
