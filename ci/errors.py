"""Errors the pipeline reports to people and CI: one message, one exit code, no traceback.

Every user-facing failure (bad input, a refused gate, an unreachable emulator) is an
`MlopsError`; the CLI layer prints its message and returns its exit code, and maps the other
expected failures (botocore's, undecodable files, NaN, impossible dates) onto these
(`ci.commands.framework.classify`); anything else is a bug: one line saying so, and its
traceback only with `mlops --debug`.
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


def error_document(err: MlopsError) -> dict:
    """What `--json` prints for a failure, the same for every command."""
    return {
        "ok": False,
        "error": str(err),
        "errorType": type(err).__name__,
        "exitCode": err.exit_code,
        **err.details,
    }
