"""`mlops`: the one command that CI and people both run.

Each area registers its own subcommands through a `register(subparsers)` function, so this
module stays a table of contents. A subcommand handler takes the parsed args and returns an
exit code; with `--json` it prints one JSON document on stdout and nothing else there.

One error path for every command: an expected failure (see `ci.errors.classify`) is one
`error: ...` line on stderr, the documented exit code, and with `--json` the same error document
on stdout (`ci.errors.error_document`). A traceback is printed only with `--debug` (anywhere on
the command line, or MLOPS_DEBUG=1); without it even a bug is one line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from ci import commands_infra, commands_pipeline
from ci.errors import MlopsError, UsageError, classify, error_document
from ci.jsonable import dumps
from ml import cli as ml_cli
from policies import cli as policies_cli

# Modules that contribute subcommands; each has register(subparsers).
COMMAND_MODULES = [commands_infra, commands_pipeline, policies_cli, ml_cli]
DEBUG_FLAG = "--debug"
DEBUG_ENV = "MLOPS_DEBUG"
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BUG = 130, 143, 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (CI cancelling a job, `kill`): unwound like Ctrl-C so every `finally` runs and run
    records end Stopped."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument through the one error path (exit 2, one line)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mlops",
        description="MLOps blueprint for cloud GPUs: preview stacks, train, gate, register, promote, monitor, audit.",
    )
    parser.add_argument(
        DEBUG_FLAG, action="store_true", help="show the traceback of a failure (accepted anywhere on the line)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _wants_json(args: argparse.Namespace | None, argv: list[str]) -> bool:
    if args is not None:
        return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"
    return "--json" in argv or "--format=json" in argv


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    args = None
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        args = build_parser().parse_args(argv)
        args.debug = debug
        return int(args.handler(args) or 0)
    except Terminated:
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if debug:
            traceback.print_exc()
        return report(err, _wants_json(args, argv))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def report(err: BaseException, as_json: bool) -> int:
    """Print one failure the one way: a line on stderr, the document on stdout with --json."""
    clear = classify(err)
    if clear is None:  # a bug: still one line, and the way to see more
        clear = MlopsError(
            f"internal error: {type(err).__name__}: {err} (a bug in mlops; rerun with {DEBUG_FLAG} for the traceback)"
        )
        clear.exit_code = EXIT_BUG
    print(f"error: {clear}", file=sys.stderr)
    if as_json:
        print(dumps(error_document(clear)))
    return clear.exit_code


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
