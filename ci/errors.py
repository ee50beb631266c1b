"""Errors the pipeline reports to people and CI: one message, one exit code, no traceback.

Every user-facing failure (bad input, a refused gate, an unreachable emulator) is an
`MlopsError`; the CLI layer prints its message and returns its exit code. `classify` maps the
other expected failures (botocore's, undecodable files, NaN, impossible dates) onto these;
anything else is a bug: one line saying so, and its traceback only with `mlops --debug`.
"""

from __future__ import annotations


class MlopsError(Exception):
    """A failure the user can act on; `exit_code` tells CI what kind."""

    exit_code = 1

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class UsageError(MlopsError):
    """Bad input: a flag, a key, a value outside what is allowed."""

    exit_code = 2


class UnknownStackError(UsageError):
    pass


class AwsAccessError(MlopsError):
    """No credentials, emulator unreachable, throttled past every retry, access denied."""

    exit_code = 3


class RefusedError(MlopsError):
    """A gate said no: promotion, registration or an instance type was refused. Nothing changed."""

    exit_code = 4


class TrainingFailedError(MlopsError):
    """The training job (SageMaker or local) ended Failed or Stopped."""

    exit_code = 5


class NotFoundError(MlopsError):
    """A package, job, run record, report or captured data is not where it should be."""

    exit_code = 6


# --- one error path for every command ------------------------------------------------------


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


def error_document(err: MlopsError) -> dict:
    """What `--json` prints for a failure, the same for every command."""
    return {
        "ok": False,
        "error": str(err),
        "errorType": type(err).__name__,
        "exitCode": err.exit_code,
        **err.details,
    }
