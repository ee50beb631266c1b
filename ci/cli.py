"""`mlops`: the one command that CI and people both run.

Each area registers its own subcommands through a `register(subparsers)` function, so this
module stays a table of contents. A subcommand handler takes the parsed args and returns an
exit code; with `--json` it prints one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import sys

from ci import commands_infra, commands_pipeline
from ml import cli as ml_cli
from policies import cli as policies_cli

# Modules that contribute subcommands; each has register(subparsers).
COMMAND_MODULES = [commands_infra, commands_pipeline, policies_cli, ml_cli]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="MLOps blueprint for cloud GPUs: preview stacks, train, gate, register, promote, monitor, audit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
