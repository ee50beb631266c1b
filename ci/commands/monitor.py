"""`mlops monitor`: drift of captured traffic, published where the stack's alarm looks, and what follows."""

from __future__ import annotations

from typing import Any

import click

from ci.commands import argtypes
from ci.commands.framework import Params, command, step
from ci.commands.options import hp_option, model_option, open_stack, poll_seconds_option, stack_options
from ci.progress import Progress


@command(
    "monitor",
    "compute drift of captured traffic, publish it, alert and retrain past the threshold",
    "Reads the endpoint's captured data, computes drift against the deployed package's baseline, publishes it "
    "under the namespace, metric and dimensions of the stack's drift alarm, and past the threshold notifies the "
    "alert topic and retrains on the newest data through the same gate.",
)
@stack_options()
@model_option()
@click.option(
    "--since-hours",
    type=argtypes.HOURS,
    default=24.0,
    help="captured data of the last N hours (0: all; default 24)",
)
@click.option("--no-retrain", is_flag=True, help="notify only; do not retrain")
@click.option("--retrain-local", is_flag=True, help="retrain with the local runner instead of SageMaker")
@hp_option("hyperparameters for the retraining run")
@poll_seconds_option("poll interval while following the retraining job")
@step
def monitor(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.monitor import monitor as measure
    from ci.steps.pipeline import TrainRequest, train_gate_register

    ctx = open_stack(args, progress)
    model = ctx.model(args.model)
    retrain = None
    if not args.no_retrain:
        req = TrainRequest(
            model=model,
            latest_data=True,
            local=args.retrain_local,
            poll_seconds=args.poll_seconds,
            hyperparameters=args.hp,
        )

        def retrain(package):
            """Retrain where the deployed package was trained (its stack), on that stack's newest data."""
            home = package.metadata.get("mlops:stack") or ctx.stack
            home_ctx = ctx if home == ctx.stack else open_stack(args, progress, stack=home)
            return train_gate_register(home_ctx, req)

    result = measure(
        ctx.session, ctx.outputs, model, since_hours=args.since_hours or None, retrain=retrain, progress=progress
    )
    m = result["metric"]
    text = [
        f"drift score {result['score']:.4f} (threshold {result['threshold']:g}) on {result['endpoint']}: "
        + ("DRIFTED" if result["drifted"] else "ok"),
        f"  published {m['namespace']}/{m['name']} {m['dimensions']}",
        f"  report {result['reportUri']}",
    ]
    if result["notified"]:
        text.append(f"  notified {result['notified']['topic']}")
    if result["retrain"]:
        text.append(
            f"  retrained: {result['retrain'].get('job')} (gate "
            f"{'passed' if result['retrain']['gate']['passed'] else 'failed'})"
        )
    return result, "\n".join(text)


COMMANDS = (monitor,)
