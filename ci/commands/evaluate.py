"""`mlops evaluate`: the gate. A candidate that loses is exit 4, with the report written."""

from __future__ import annotations

from typing import Any

import click

from ci.commands.framework import Params, command, step
from ci.commands.options import open_stack, stack_options
from ci.errors import MlopsError
from ci.progress import Progress


class GateFailed(MlopsError):
    """`mlops evaluate` ran and the candidate lost: the report is written, the exit code says no."""

    exit_code = 4


@command(
    "evaluate",
    "score a training run against the champion on held-out data; the gate",
    "Scores the run's model and the champion (newest Approved package) on the run's held-out test split, applies "
    "the stack's gate (mlops:gate metric, minImprovement, minimums) and writes the evaluation report to S3. "
    "Exits 4 when the gate fails.",
)
@stack_options()
@click.option("--job", required=True, help="training job name (from `mlops train`)")
@step
def evaluate(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.pipeline import evaluate as score

    ctx = open_stack(args, progress)
    report = score(ctx, args.job)
    gate = report["gate"]
    if not gate["passed"]:
        raise GateFailed(
            f"gate failed for {args.job}: {gate['reason']} (report: {report['reportUri']})", details={"report": report}
        )
    return {"report": report}, (
        f"gate passed for {args.job}: {gate['reason']}\n  report {report['reportUri']}\n"
        f"next: mlops register --stack {ctx.stack} --job {args.job}"
    )


COMMANDS = (evaluate,)
