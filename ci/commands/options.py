"""The options several commands share, each declared once, and what they open.

Decorators list options in the order `--help` shows them. `stack_options` are the ones every
command that reads a stack takes (which stack, where its files are, where its outputs come from,
--json); `open_stack` turns them into the step's `ci.steps.pipeline.Context`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ci.aws.outputs import SOURCES
from ci.commands import argtypes
from ci.commands.framework import Params
from ci.errors import UsageError
from ci.progress import Progress

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

STACK_HELP = "stack name (dev, staging, prod, local)"


def options(*decorators: Decorator) -> Decorator:
    """Several option decorators as one, listed in --help in the order given."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


def stack_option(*, required: bool = True, help: str = STACK_HELP) -> Decorator:
    return click.option("--stack", required=required, help=help)


def json_option(
    help: str = "print one JSON document on stdout (progress stays on stderr)", dest: str = "json"
) -> Decorator:
    return click.option("--json", dest, is_flag=True, help=help)


def stack_options(*, stack: bool = True, stack_required: bool = True) -> Decorator:
    """--stack, --stacks-dir, --outputs, --outputs-from and --json: what `open_stack` reads."""
    return options(
        *([stack_option(required=stack_required)] if stack else []),
        click.option(
            "--stacks-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="folder with the Pulumi.<stack>.yaml files (default: ./stacks of this repository, or "
            "$MLOPS_STACKS_DIR)",
        ),
        click.option(
            "--outputs",
            metavar="FILE",
            default=None,
            help="stack outputs from `pulumi stack output --json` (a file, or - for stdin)",
        ),
        click.option(
            "--outputs-from",
            type=click.Choice(SOURCES),
            default="auto",
            help="where stack outputs come from "
            "(default auto: --outputs, the Pulumi CLI, the local backend, the offline preview)",
        ),
        json_option(),
    )


def model_option(help: str = "model name (default: the stack's only model)", required: bool = False) -> Decorator:
    return click.option("--model", required=required, help=help)


def poll_seconds_option(help: str = "poll interval while following the job") -> Decorator:
    return click.option("--poll-seconds", type=argtypes.SECONDS, default=30.0, help=help)


def package_argument() -> Decorator:
    return click.argument("package", help="model package ARN")


def reason_option(required: bool, help: str) -> Decorator:
    return click.option("--reason", required=required, help=help)


def hp_option(help: str) -> Decorator:
    """--hp KEY=VALUE (repeatable), parsed into a dict and checked as ml/train.py would check it."""
    return click.option("--hp", multiple=True, metavar="KEY=VALUE", help=help, callback=_hyperparameters)


def _hyperparameters(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--hp {pair!r}: expected KEY=VALUE, e.g. --hp epochs=5")
        out[key.strip()] = value.strip()
    if out:  # refuse what ml/train.py would refuse, before a job is launched (and paid for)
        from ml.hyperparameters import HyperparameterError, parse_hyperparameters

        try:
            parse_hyperparameters(out)
        except HyperparameterError as err:
            raise UsageError(f"--hp: {' '.join(str(err).split())}") from None
    return out


def open_stack(args: Params, progress: Progress, stack: str | None = None) -> Any:
    """The step context (`ci.steps.pipeline.Context`) of the stack the options name."""
    from ci.steps.pipeline import open_context

    return open_context(
        stack or args.stack,
        stacks_dir=args.stacks_dir,
        outputs_file=args.outputs,
        outputs_from=args.outputs_from,
        progress=progress,
    )


def who(args: Params) -> str:
    """Who decides: --by, else the CI actor, else the local user."""
    return args.by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"


def region_of(arn: str) -> str:
    """The region of a model package ARN (checked first: a bad ARN is exit 2)."""
    from ci.aws.registry import check_package_arn

    check_package_arn(arn)
    return arn.split(":")[3]
