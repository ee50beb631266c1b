"""`mlops register`, `approve`, `reject` and `packages`: the model registry's side of the lifecycle.

register creates the package for a gated run; approve and reject record who decided and why;
packages lists a model's group.
"""

from __future__ import annotations

from typing import Any

import click

from ci.commands.framework import Params, command, step
from ci.commands.options import (
    json_option,
    model_option,
    open_stack,
    package_argument,
    reason_option,
    region_of,
    stack_options,
    who,
)
from ci.progress import Progress


@command(
    "register",
    "create the model package for a gated run (PendingManualApproval)",
    "Creates the model package: inference image, model data, content and instance types, model metrics pointing "
    "at the evaluation report, the lineage record as customer metadata. Refuses a failed gate unless --force "
    "--reason. Registering the same job twice returns the first package.",
)
@stack_options()
@click.option("--job", required=True, help="training job name")
@click.option(
    "--inference-image", help="serving image (default: <ecrRepositoryUrl>:<git commit>), pinned by digest when known"
)
@click.option("--force", is_flag=True, help="register although the gate failed (needs --reason)")
@reason_option(required=False, help="why the gate is overridden; recorded on the package")
@step
def register(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.pipeline import register as create_package
    from ci.steps.register import require_reason

    reason = require_reason(args.force, args.reason)
    ctx = open_stack(args, progress)
    result = create_package(ctx, args.job, inference_image=args.inference_image, force_reason=reason)
    pkg = result["package"]
    verb = "registered" if result["created"] else "already registered"
    return result, (
        f"{verb} {pkg['arn']} ({pkg['status']}, gate {pkg['gate']})\nnext: mlops approve {pkg['arn']} --reason '...'"
    )


def decision(name: str, status: str) -> click.Command:
    """`approve` or `reject`: set a package's status, recording who and why."""

    @command(
        name,
        f"{name} a model package, recording who and why",
        f"Sets the package to {status}; who (--by, or $GITHUB_ACTOR, or $USER) and why (--reason) are recorded in "
        "its ApprovalDescription and customer metadata.",
    )
    @package_argument()
    @reason_option(required=True, help="why; recorded on the package")
    @click.option("--by", help="who decides (default $GITHUB_ACTOR or $USER)")
    @json_option("print one JSON document on stdout")
    @step
    def decide(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
        from ci.aws import clients as aws
        from ci.aws import registry

        session = aws.make_session(region_of(args.package))
        package = registry.set_status(
            session.client("sagemaker"), args.package, status, by=who(args), reason=args.reason
        )
        progress.step(f"{package.arn} is {package.status}: {package.approval_description}")
        nxt = f"\nnext: mlops promote {package.arn} --to dev" if status == registry.APPROVED else ""
        return {"package": package.to_dict()}, f"{package.arn}: {package.status} ({package.approval_description}){nxt}"

    return decide


approve = decision("approve", "Approved")
reject = decision("reject", "Rejected")


@command("packages", "list a model's packages in the stack's registry group", "Newest first.")
@stack_options()
@model_option()
@click.option(
    "--status",
    type=click.Choice(("Approved", "PendingManualApproval", "Rejected")),
    help="only this approval status",
)
@step
def packages(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.aws import registry

    ctx = open_stack(args, progress)
    group = ctx.outputs.modelPackageGroups[ctx.model(args.model)]
    rows = [
        registry.describe(ctx.sagemaker, summary["ModelPackageArn"]).to_dict()
        for summary in registry.list_packages(ctx.sagemaker, group, args.status)
    ]
    lines = [f"{group}: {len(rows)} package(s)"] + [
        f"  v{r['version']:<4} {r['status']:<22} gate {r['gate'] or '-':<7} {r['trainingJob']:<45} {r['arn']}"
        for r in rows
    ]
    return {"group": group, "packages": rows}, "\n".join(lines)


COMMANDS = (register, approve, reject, packages)
