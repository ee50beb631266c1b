"""The `mlops` command through click's own runner: every command documents itself, every failure
takes the one error path, progress is plain lines off a terminal."""

from __future__ import annotations

import importlib
import io
import json

import click
import pytest
from click.testing import CliRunner

from ci.cli import mlops
from ci.errors import MlopsError, error_document

# Every module that declares an MlopsError subclass, so the table below sees them all.
ERROR_MODULES = ["ci.errors", "ci.aws.clients", "ci.aws.stackfile", "ci.steps.integrity", "ci.steps.verify",
                 "ci.commands.evaluate", "ci.commands.train"]  # fmt: skip


def leaves(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaves(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(leaves(mlops))


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def run(*args: str):
    return CliRunner().invoke(mlops, list(args))


def test_mlops_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0 and "usage: mlops" in result.output
    for name, command in mlops.commands.items():
        assert name in result.output and command.get_short_help_str(1000)[:30] in " ".join(result.output.split())


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_has_help_listing_its_options(path):
    command = COMMANDS[path]
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert command.help and f"usage: mlops {' '.join(path)}" in result.output
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{param.opts[0]} has no help text"
            assert all(opt in result.output for opt in param.opts), param.opts
        else:
            assert param.human_readable_name in result.output


@pytest.fixture
def failing(monkeypatch):
    """A command `mlops fail-with` that raises the error it is given."""
    raised: list[BaseException] = []

    @click.command("fail-with")
    @click.option("--json", is_flag=True)
    def fail_with(json: bool) -> None:
        raise raised[0]

    monkeypatch.setitem(mlops.commands, "fail-with", fail_with)
    return raised


for _module in ERROR_MODULES:
    importlib.import_module(_module)
ERRORS = sorted({MlopsError, *subclasses(MlopsError)}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_each_error_class_exits_with_its_code_and_the_json_document(cls, failing):
    error = cls.__new__(cls)
    MlopsError.__init__(error, f"{cls.__name__} happened", details={"where": "here"})
    failing.append(error)
    result = CliRunner().invoke(mlops, ["fail-with", "--json"])
    assert result.exit_code == cls.exit_code
    assert json.loads(result.stdout) == error_document(error)
    assert result.stderr == f"error: {cls.__name__} happened\n"


def test_a_bug_is_one_line_exit_1_and_the_traceback_only_with_debug(failing):
    failing.append(KeyError("oops"))
    quiet = CliRunner().invoke(mlops, ["fail-with"])
    assert quiet.exit_code == 1 and "Traceback" not in quiet.stderr
    assert quiet.stderr.startswith("error: internal error: KeyError: 'oops'")
    loud = CliRunner().invoke(mlops, ["fail-with", "--debug"])
    assert loud.exit_code == 1 and "Traceback" in loud.stderr


@pytest.mark.parametrize(
    "args", [[], ["nonsense"], ["train", "--frobnicate"], ["train", "--stack", "dev", "--seed", "x", "--json"]]
)
def test_a_usage_error_exits_2_in_one_line(args):
    result = run(*args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: mlops")
    if "--json" in args:
        assert json.loads(result.stdout)["errorType"] == "UsageError"


def test_progress_is_plain_lines_off_a_terminal():
    from ci.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream=stream)
    with progress.task("uploading data set x to s3://b/p/", total=2) as uploading:
        progress.info("train: a.csv")
        uploading.advance()
        uploading.describe("ignored off a terminal")
    with progress.task("following job-1", announce=False) as following:
        following.describe("following job-1: Training")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("s] uploading data set x to s3://b/p/")
    assert lines[1] == "        train: a.csv"
