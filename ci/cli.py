"""`mlops`: the one command that CI and people both run.

This module only assembles: each command group lives in its own module of `ci/commands/`
(policies/ and ml/ contribute theirs), and `ci.commands.framework.run` is the one error path
every command shares. A command returns an exit code; with `--json` it prints one JSON document
on stdout and nothing else there.
"""

from __future__ import annotations

import sys

import click

from ci.commands import demo, deploy, evaluate, image, infra, monitor, registry, train
from ci.commands.framework import DEBUG_FLAG, RootGroup
from ml import cli as ml_cli
from policies import cli as policies_cli

# In the order `mlops --help` lists them: the lifecycle, then the offline checks.
COMMAND_MODULES = (infra, train, image, evaluate, registry, deploy, monitor, demo, policies_cli, ml_cli)


@click.group(
    "mlops",
    cls=RootGroup,
    help="MLOps blueprint for cloud GPUs: preview stacks, train, gate, register, promote, monitor, audit.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    no_args_is_help=False,
    subcommand_metavar="COMMAND",
)
@click.option(DEBUG_FLAG, is_flag=True, help="show the traceback of a failure (accepted anywhere on the line)")
def mlops(debug: bool) -> None:
    pass  # --debug is read by `run` wherever it stands on the line


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        mlops.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """`mlops ARGS...` in this process: the exit code (`--help` ends with SystemExit(0), as argparse did)."""
    return mlops.main(argv, standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main())
