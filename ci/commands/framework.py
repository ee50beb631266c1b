"""The click plumbing every `mlops` command shares: how help reads, how a pipeline step runs, and
the one error handler.

A step command prints progress on stderr and, on stdout, either a human summary or with `--json`
one JSON document. Every failure, of every command (ours, `policies/cli.py`'s, `ml/cli.py`'s, or
a usage error click finds), goes through `run`: one `error: ...` line on stderr, the exit code
of its `MlopsError` class (see `classify`), and with `--json` the same error document on
stdout (`ci.errors.error_document`). A traceback is printed only with `--debug` (anywhere on the
command line) or MLOPS_DEBUG=1; without it even a bug is one line.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import click

from ci.errors import AwsAccessError, MlopsError, UsageError, error_document
from ci.progress import Progress
from ml.jsonable import dumps

DEBUG_FLAG = "--debug"
DEBUG_ENV = "MLOPS_DEBUG"
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BUG = 130, 143, 1
EXIT_CODES = """exit codes: 0 ok, 1 failed, 2 bad input or unknown stack, 3 AWS access (credentials, emulator,
throttling), 4 refused by a gate (nothing changed), 5 training job failed or stopped, 6 not found"""

# A command's parsed options and arguments, read as attributes (`args.stack`).
Params = SimpleNamespace
# A step: parsed options and progress in, (the --json document's body, the human summary) out.
Step = Callable[[Params, Progress], tuple[dict[str, Any], str]]


# --- help ----------------------------------------------------------------------------------


class Formatter(click.HelpFormatter):
    """click's help, with the `usage:` line people and tests know from argparse."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "usage: " if prefix is None else prefix)


class Context(click.Context):
    formatter_class = Formatter


class GroupedOption(click.Option):
    """An option listed under its own heading in --help, e.g. the data sources of `train`."""

    def __init__(self, *args: Any, group: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.group = group


class Command(click.Command):
    """A command whose --help lists grouped options under their group's heading."""

    context_class = Context

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and isinstance(param, click.Option):
                sections.setdefault(getattr(param, "group", "Options"), []).append(record)
        for title, records in sections.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class Group(click.Group):
    """Commands listed in the order they are added (the lifecycle's), each with mlops's help style."""

    context_class = Context
    command_class = Command

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.context_class = Context  # policies/ and ml/ declare plain click commands
        super().add_command(cmd, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class RootGroup(Group):
    """The `mlops` group. Run as a program (the console script, click's CliRunner) it goes through
    `run`, the one error path, rather than click's own exception handling."""

    def main(  # type: ignore[override]
        self, args: list[str] | None = None, prog_name: str | None = None, standalone_mode: bool = True, **extra: Any
    ) -> int:
        code = run(self, None if args is None else list(args))
        if standalone_mode:
            sys.exit(code)
        return code


def command(name: str, summary: str, description: str, cls: type[click.Command] = Command) -> Callable:
    """`@command(...)`: a command with the one-line summary `mlops --help` lists, its description
    and the exit codes."""
    return click.command(name, cls=cls, short_help=summary, help=description, epilog=EXIT_CODES)


def step(fn: Step) -> Callable[..., int]:
    """A click callback that runs a pipeline step: one JSON document with --json, else the summary."""

    @functools.wraps(fn)
    def callback(**params: Any) -> int:
        args = Params(**params)
        result, summary = fn(args, Progress(enabled=True))
        print(dumps({"ok": True, **result}) if getattr(args, "json", False) else summary)
        return 0

    return callback


# --- the one error path --------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (CI cancelling a job, `kill`): unwound like Ctrl-C so every `finally` runs and run
    records end Stopped."""


def run(root: click.Group, argv: list[str] | None) -> int:
    """Parse and run one command line; every outcome becomes an exit code here."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return dispatch(root, argv)
    except click.exceptions.Exit as done:  # --help: printed, and the process ends as argparse ended it
        raise SystemExit(done.exit_code) from None
    except Terminated:
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if debug:
            traceback.print_exc()
        return report(err, wants_json(argv))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def dispatch(root: click.Group, argv: list[str]) -> int:
    """Parse `argv` and run the command it names; its return value is the exit code."""
    with root.make_context(root.name, argv) as ctx:
        return int(root.invoke(ctx) or 0)


def wants_json(argv: list[str]) -> bool:
    """Whether the failed line asked for JSON: `--json`, or audit's `--format json`."""
    return "--json" in argv or "--format=json" in argv or ("--format", "json") in itertools.pairwise(argv)


def report(err: BaseException, as_json: bool) -> int:
    """Print one failure the one way: a line on stderr, the document on stdout with --json."""
    clear = _usage(err) if isinstance(err, click.ClickException) else classify(err)
    if clear is None:  # a bug: still one line, and the way to see more
        clear = MlopsError(
            f"internal error: {type(err).__name__}: {err} (a bug in mlops; rerun with {DEBUG_FLAG} for the traceback)"
        )
        clear.exit_code = EXIT_BUG
    print(f"error: {clear}", file=sys.stderr)
    if as_json:
        print(dumps(error_document(clear)))
    return clear.exit_code


def classify(err: BaseException) -> MlopsError | None:
    """The `MlopsError` an expected failure stands for, or None for a bug.

    Expected: our own errors, AWS's actionable ones (translated by `ci.aws.clients`), a file that cannot be
    read or decoded, a document that does not parse, a value out of range (NaN, infinity, an
    impossible date: Python raises ValueError or OverflowError), a network that timed out or
    reset. Each keeps its one-line message and gets its documented exit code.
    """
    import json

    import yaml

    if isinstance(err, MlopsError):
        return err
    from botocore.exceptions import BotoCoreError, ClientError

    from ci.aws.clients import translate

    if isinstance(err, (BotoCoreError, ClientError)):
        clear = translate(err)
        if clear is not None:
            return clear
        if isinstance(err, ClientError):
            error = err.response.get("Error", {})  # AWS said no to something our checks let through
            return MlopsError(f"AWS refused {err.operation_name}: {error.get('Code')}: {error.get('Message')}")
        return AwsAccessError(f"AWS call failed: {type(err).__name__}: {err}")
    if isinstance(err, UnicodeError):
        return UsageError(f"input is not valid UTF-8 text: {err}")
    if isinstance(err, (json.JSONDecodeError, yaml.YAMLError)):
        return UsageError(f"input does not parse: {_one_line(err)}")
    if isinstance(err, (TimeoutError, ConnectionError)):
        return AwsAccessError(f"the network failed: {type(err).__name__}: {err}")
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        name = getattr(err, "filename", None) or ""
        return UsageError(f"cannot read {name!s}: {err.strerror or err}" if name else f"cannot read a file: {err}")
    if isinstance(err, OSError):  # a full disk, an I/O error: the machine's, not a bug of ours
        return MlopsError(f"{type(err).__name__}: {err}")
    if isinstance(err, (ValueError, OverflowError)):  # ConfigError, HyperparameterError, NaN, dates
        return UsageError(_one_line(err))
    return None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 2000 else text[:1997] + "..."


def _usage(err: click.ClickException) -> UsageError:
    """A flag or argument click refused: exit 2, naming the command and where its help is."""
    ctx = getattr(err, "ctx", None)
    prog = ctx.command_path if ctx is not None else "mlops"
    return UsageError(f"{prog}: {err.format_message()} (see {prog} --help)")


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()
