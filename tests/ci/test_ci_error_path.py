"""One error path for every `mlops` command: one `error:` line, the documented exit code, the
same JSON document under --json, a traceback only with --debug."""

from __future__ import annotations

import json
import os
import signal

import pytest

DOCUMENT_KEYS = {"ok", "error", "errorType", "exitCode"}


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["packages", "--stack", "qa"], 2),  # pipeline commands
        (["audit", "--state", "/nonexistent/state.json"], 2),  # policies
        (["cost", "--stack", "dev", "--training-runs", "nan"], 2),  # policies, argparse
        (["data-check", "/nonexistent"], 2),  # ml
        (["preview", "--stack", "/nonexistent/Pulumi.x.yaml"], 2),  # infra
        (["train", "--stack", "dev", "--seed", "x"], 2),  # argparse
        (["deploy"], 2),  # no such command
    ],
)
def test_every_command_family_prints_the_same_error_document(argv, code, stacks, mlops):
    """Before: audit, cost, preview and argparse printed no JSON at all; data-check lacked the exit code."""
    result = mlops(*argv, "--json")
    assert result.code == code, result
    document = json.loads(result.out)
    assert set(document) >= DOCUMENT_KEYS and document["ok"] is False and document["exitCode"] == code
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and document["error"] in lines[0] and "Traceback" not in result.err


def test_a_traceback_only_with_debug(stacks, mlops):
    quiet = mlops("packages", "--stack", "qa")
    assert quiet.code == 2 and "Traceback" not in quiet.err
    loud = mlops("packages", "--stack", "qa", "--debug")
    assert loud.code == 2 and "Traceback (most recent call last)" in loud.err and "UnknownStackError" in loud.err


def test_a_bug_is_one_line_that_says_how_to_see_more(stacks, mlops, monkeypatch):
    import ci.steps.pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(ci.steps.pipeline, "open_context", broken)
    result = mlops("packages", "--stack", "dev", "--json")
    assert result.code == 1 and "Traceback" not in result.err
    assert "internal error: ZeroDivisionError" in result.err and "--debug" in result.err
    assert json.loads(result.out)["errorType"] == "MlopsError"


def test_sigterm_unwinds_like_ctrl_c(stacks, mlops, monkeypatch):
    """SIGTERM (CI cancelling a job) runs every `finally` (run records, temp folders), exit 143."""
    import ci.steps.pipeline

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(ci.steps.pipeline, "open_context", terminated)
    previous = signal.getsignal(signal.SIGTERM)
    result = mlops("packages", "--stack", "dev")
    assert result.code == 143 and "terminated" in result.err
    assert signal.getsignal(signal.SIGTERM) == previous  # restored for whoever called main()


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, "not valid UTF-8"),
        (ValueError("day is out of range for month"), 2, "day is out of range"),
        (OverflowError("cannot convert float infinity to integer"), 2, "infinity"),
        (FileNotFoundError(2, "No such file or directory", "/x.json"), 2, "/x.json"),
        (TimeoutError("timed out"), 3, "timed out"),
        (ConnectionResetError(104, "Connection reset by peer"), 3, "reset"),
        (OSError(28, "No space left on device"), 1, "No space left"),
    ],
)
def test_expected_failures_get_their_exit_code(error, code, says):
    from ci.commands.framework import classify

    clear = classify(error)
    assert clear is not None and clear.exit_code == code and says in str(clear)
