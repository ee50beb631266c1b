"""`mlops image`: the one image that trains and serves, built and pushed to the stack's ECR repository."""

from __future__ import annotations

from typing import Any

import click

from ci.commands.framework import Params, command, step
from ci.commands.options import open_stack, stack_options
from ci.progress import Progress


@command(
    "image",
    "build the serving image (container/Dockerfile) and push it to the stack's ECR repository",
    "Builds ml/serve.py into the inference image with Docker, tags it with the ML code's git commit (the tag "
    "`mlops register` references by default) and pushes it to the environment's ECR repository; an existing tag "
    "is reused (tags are immutable). Prints the digest the model package will pin.",
)
@stack_options()
@click.option("--tag", help="image tag (default: the first 12 characters of the git commit)")
@click.option("--no-push", is_flag=True, help="build only")
@click.option("--docker", default="docker", help="the docker client to run (default docker)")
@step
def image(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.image import build_and_push, serving_variant

    ctx = open_stack(args, progress)
    result = build_and_push(
        ctx.session,
        ctx.outputs,
        tag=args.tag,
        push=not args.no_push,
        docker=args.docker,
        progress=progress,
        variant=serving_variant(ctx.config),
    )
    training = result["training"]
    return result, (
        f"serving  {result['image']} ({result['variant']}) {result['digest'] or '(built, not pushed)'}\n"
        f"training {training['image']} (cuda) {training['digest'] or '(built, not pushed)'}"
    )


COMMANDS = (image,)
