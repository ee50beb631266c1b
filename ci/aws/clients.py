"""AWS sessions for the pipeline: one place that decides where calls go and how they retry.

Real AWS and an emulator (moto on loopback) look the same to the rest of `ci/`: when
`AWS_ENDPOINT_URL` is set, *every* client of the session points there, including the ones the
sagemaker SDK builds itself (it would otherwise call STS at a fixed AWS address). Throttling is
retried by botocore's standard retry mode (exponential backoff with jitter); errors a person can
act on (no credentials, emulator down, throttled past every retry) become `AwsAccessError`s
with one clear sentence.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ci.errors import AwsAccessError, UsageError

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
MAX_ATTEMPTS_ENV = "MLOPS_AWS_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 5
# A frozen endpoint must fail a command within a minute, not after every default retry (~8 min):
# 5 attempts x (8 s read) + backoff of at most 1 + 2 + 4 + 8 s (botocore standard mode) = 55 s.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 8
STANDARD_MODE_MAX_BACKOFF_S = 20  # botocore.retries.standard._MAX_BACKOFF
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
}
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def endpoint_url() -> str | None:
    """The emulator endpoint, if this run targets one (None means real AWS)."""
    value = os.environ.get(ENDPOINT_ENV, "").strip()
    return value or None


def max_attempts() -> int:
    raw = os.environ.get(MAX_ATTEMPTS_ENV, str(DEFAULT_MAX_ATTEMPTS)).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 20:
        raise AwsAccessError(f"{MAX_ATTEMPTS_ENV}={raw!r} is not a whole number from 1 to 20")
    return int(raw)


def retry_config() -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts()},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )


def worst_case_seconds(attempts: int) -> float:
    """How long a call to an endpoint that accepts but never answers can take before it fails."""
    backoff = sum(min(2 ** (n - 1), STANDARD_MODE_MAX_BACKOFF_S) for n in range(1, attempts))
    return attempts * READ_TIMEOUT_S + backoff


class EndpointSession(boto3.session.Session):
    """A boto3 session whose every client and resource uses one endpoint and one retry policy."""

    def __init__(self, *args, endpoint: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mlops_endpoint = endpoint

    def client(self, *args, **kwargs):
        self._defaults(kwargs)
        client = super().client(*args, **kwargs)
        service = client.meta.service_model.service_name
        if service in PREFLIGHT_SERVICES:
            client.meta.events.register(f"before-parameter-build.{service}", _preflight)
        return client

    def resource(self, *args, **kwargs):
        self._defaults(kwargs)
        return super().resource(*args, **kwargs)

    def _defaults(self, kwargs: dict) -> None:
        if self.mlops_endpoint and not kwargs.get("endpoint_url"):
            kwargs["endpoint_url"] = self.mlops_endpoint
        config = retry_config()
        kwargs["config"] = config.merge(kwargs["config"]) if kwargs.get("config") else config


# Requests to these services are checked against botocore's full model (lengths, patterns, enums,
# ranges: botocore's own client-side check covers types and required members only) before they are
# sent: a value AWS would refuse is refused here first, naming the member and the rule.
PREFLIGHT_SERVICES = frozenset({"sagemaker"})


class AwsRuleError(UsageError):
    """A request AWS would refuse, caught before it was sent (exit 2, nothing changed)."""


def _preflight(params: dict, model, **_) -> None:
    from kernel.aws_model import validate_request

    service, operation = model.service_model.service_name, model.name
    problems = validate_request(service, operation, params)
    if problems:
        raise AwsRuleError(f"{operation} not sent: AWS would refuse it; " + "; ".join(p.message for p in problems[:5]))


_LOADER = None


def _botocore_session():
    """A fresh botocore session sharing one loader: service models are parsed once per process."""
    global _LOADER
    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER)
    return session


def make_session(region: str) -> EndpointSession:
    """A session for `region`; against an emulator, checked reachable and given dummy credentials."""
    endpoint = endpoint_url()
    if endpoint:
        check_reachable(endpoint)
        session = EndpointSession(region_name=region, endpoint=endpoint, botocore_session=_botocore_session())
        if session.get_credentials() is None:
            session = EndpointSession(
                region_name=region, endpoint=endpoint, botocore_session=_botocore_session(), **EMULATOR_CREDENTIALS
            )
        return session
    session = EndpointSession(region_name=region, botocore_session=_botocore_session())
    if session.get_credentials() is None:
        raise AwsAccessError(no_credentials_message())
    return session


def check_reachable(url: str, timeout: float = 2.0) -> None:
    """Fail in one second, not after every retry, when the emulator is not listening."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise AwsAccessError(f"{ENDPOINT_ENV}={url!r} is not an http(s) URL; use e.g. http://127.0.0.1:5000")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as err:
        raise AwsAccessError(emulator_unreachable_message(url, err)) from err


def no_credentials_message() -> str:
    return (
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
        "(in CI, the OIDC deployer role), or set AWS_ENDPOINT_URL to run against an emulator"
    )


def emulator_unreachable_message(url: str, err: object) -> str:
    return (
        f"the AWS emulator at {url} ({ENDPOINT_ENV}) is unreachable ({err}); start it with "
        "`moto_server -H 127.0.0.1 -p 5000` or unset AWS_ENDPOINT_URL to use AWS"
    )


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def is_throttling(err: BaseException) -> bool:
    return isinstance(err, ClientError) and error_code(err) in THROTTLING_CODES


def translate(err: BaseException) -> AwsAccessError | None:
    """The clear error for a botocore failure a person can act on, or None to let it propagate."""
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return AwsAccessError(no_credentials_message())
    if isinstance(err, NoRegionError):
        return AwsAccessError("no AWS region: the stack outputs carry one; pass --stack or set AWS_DEFAULT_REGION")
    if isinstance(err, ReadTimeoutError):
        where = endpoint_url() or "AWS"
        return AwsAccessError(
            f"{where} did not answer within {READ_TIMEOUT_S} s, {max_attempts()} attempts in a row ({err}); "
            "the service or emulator is stuck or overloaded: retry later"
        )
    if isinstance(err, ConnectionClosedError):  # the request went out; the answer never came back
        where = endpoint_url() or "AWS"
        return AwsAccessError(
            f"{where} closed the connection after the request was sent, without an answer, "
            f"{max_attempts()} attempts in a row ({err}); the request may have been served: "
            "run the command again, it finishes what was done"
        )
    if isinstance(err, (BotoConnectionError, HTTPClientError)):  # refused, TLS, connect timeout
        url = endpoint_url()
        if url:
            return AwsAccessError(emulator_unreachable_message(url, err))
        return AwsAccessError(f"cannot reach AWS after {max_attempts()} attempts: {err}")
    if is_throttling(err):
        attempts = getattr(err, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        op = getattr(err, "operation_name", "the call")
        return AwsAccessError(
            f"AWS throttled {op} after {attempts} attempts with backoff; retry later or raise "
            f"{MAX_ATTEMPTS_ENV} (now {os.environ.get(MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS)})"
        )
    if isinstance(err, ClientError) and _is_server_error(err):
        attempts = err.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        op = getattr(err, "operation_name", "the call")
        return AwsAccessError(
            f"AWS failed {op} on its side ({error_code(err) or 'no code'}, HTTP {status}) {attempts} attempts "
            "in a row; the request may have been served: retry later, the command finishes what was done"
        )
    if isinstance(err, ClientError) and error_code(err) in (
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
    ):
        return AwsAccessError(f"access denied: {err}")
    return None


SERVER_ERROR_CODES = {"InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable",
                      "ServiceUnavailableException", "InternalServiceError"}  # fmt: skip


def _is_server_error(err: ClientError) -> bool:
    """AWS's own failure (5xx) that outlasted every retry: not a refusal of the request."""
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error_code(err) in SERVER_ERROR_CODES or 500 <= int(status) <= 599


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's actionable failures into `AwsAccessError`; leave the rest alone."""
    try:
        yield
    except AwsAccessError:
        raise
    except Exception as err:
        clear = translate(err)
        if clear is None:
            raise
        raise clear from err


def sagemaker_sdk_session(boto_session: boto3.session.Session, default_bucket: str, prefix: str):
    """A sagemaker (v3) SDK session on our boto3 session: staging in our bucket, telemetry off.

    Against an emulator the SDK's role validation is off (moto has no policy simulation); the
    telemetry opt-out is always set, since the pipeline must not call home from CI or loopback.
    """
    _opt_out_of_sdk_telemetry()
    if endpoint_url():
        os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    from sagemaker.core.helper.session_helper import Session

    return Session(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker"),
        default_bucket=default_bucket,
        default_bucket_prefix=prefix,
    )


_TELEMETRY_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def _opt_out_of_sdk_telemetry() -> None:
    if os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE"):
        return
    path = (
        Path(tempfile.gettempdir()) / f"mlops-sagemaker-config-{os.getuid() if hasattr(os, 'getuid') else 'user'}.yaml"
    )
    if not path.exists() or path.read_text() != _TELEMETRY_CONFIG:
        path.write_text(_TELEMETRY_CONFIG)
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(path)
