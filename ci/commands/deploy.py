"""`mlops promote`, `verify` and `rollback`: what an environment runs is its stack file.

promote and rollback edit the stack file (a reviewed change; `pulumi up` rolls it out); verify
checks afterwards that every endpoint serves what the stack declares.
"""

from __future__ import annotations

from typing import Any

import click

from ci.commands import argtypes
from ci.commands.framework import Params, command, step
from ci.commands.options import (
    model_option,
    open_stack,
    package_argument,
    poll_seconds_option,
    region_of,
    stack_options,
)
from ci.progress import Progress


@command(
    "promote",
    "write an approved package into an environment's stack config",
    "Checks the package is Approved, passed the gate, serves a model of the environment, and was live where the "
    "environment requires (mlops:promotion.requireLiveIn, e.g. staging before prod); then writes it into "
    "stacks/Pulumi.<env>.yaml (the old one goes to mlops:previousPackages). A refused promotion changes nothing.",
)
@stack_options(stack=False)
@package_argument()
@click.option("--to", required=True, help="target environment / stack (dev, staging, prod, local)")
@model_option("model name (default: the package's)")
@step
def promote(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.aws import clients as aws
    from ci.steps.promote import promote as write_package

    result = write_package(
        aws.make_session(region_of(args.package)),
        args.package,
        args.to,
        model=args.model,
        stacks_dir=args.stacks_dir,
        outputs_source=args.outputs_from,
        progress=progress,
    )
    if not result["changed"]:
        return result, f"{args.package} is already deployed for {result['model']} in {result['stack']}; nothing changed"
    return result, (
        f"promoted {args.package} to {result['stack']} ({result['stackFile']})"
        + (f", replacing {result['replaced']}" if result["replaced"] else "")
        + f"\nnext: commit the stack file in a pull request; CI runs `pulumi up --stack {result['stack']}` on merge"
    )


@command(
    "verify",
    "check that each endpoint runs the package the stack declares (run after `pulumi up`)",
    "For every model the stack deploys (outputs endpoints + approvedPackages) reads DescribeEndpoint, "
    "DescribeEndpointConfig and DescribeModel, and fails unless the endpoint is InService on the declared model "
    "package. A blue/green update that SageMaker rolled back leaves the endpoint InService on the OLD config while "
    "the provider reports success: this is the check that catches it. Waits while an endpoint is still "
    "Creating or Updating, up to --wait-seconds.",
)
@stack_options()
@model_option("only this model (default: every model the stack deploys)")
@click.option(
    "--wait-seconds",
    type=argtypes.WAIT,
    default=1800.0,
    help="how long an endpoint may stay Updating (default 1800)",
)
@poll_seconds_option("poll interval while waiting (default 30)")
@step
def verify(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.verify import verify as check_endpoints

    ctx = open_stack(args, progress)
    result = check_endpoints(
        ctx.session,
        ctx.outputs,
        model=ctx.model(args.model) if args.model else None,
        wait_seconds=args.wait_seconds,
        poll_seconds=args.poll_seconds,
        progress=progress,
    )
    lines = [f"stack {ctx.stack}: every endpoint serves what the stack declares"] + [
        f"  {e['endpoint']}: {e['status']} on {e['configName']}, package {e['declared']}" for e in result["endpoints"]
    ]
    if not result["endpoints"]:
        lines = [f"stack {ctx.stack} deploys no model (no approved package): nothing to verify"]
    return result, "\n".join(lines)


@command(
    "rollback",
    "restore an environment's previous package for a model",
    "Moves the newest entry of mlops:previousPackages.<model> back into mlops:approvedPackages.<model>.",
)
@stack_options(stack=False)
@click.option("--env", required=True, help="environment / stack to roll back")
@model_option("model name", required=True)
@step
def rollback(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.aws import clients as aws
    from ci.aws.outputs import stack_file
    from ci.aws.stackfile import read_config
    from ci.steps.promote import rollback as restore

    region = read_config(stack_file(args.env, args.stacks_dir)).get("aws:region", "us-east-1")
    result = restore(aws.make_session(region), args.env, args.model, stacks_dir=args.stacks_dir, progress=progress)
    return result, (
        f"rolled back {result['model']} in {result['stack']} to {result['restored']}\n"
        f"next: commit the stack file; `pulumi up --stack {result['stack']}` rolls it out"
    )


COMMANDS = (promote, verify, rollback)
