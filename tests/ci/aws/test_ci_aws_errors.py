"""Clear errors for the things a person can fix, and throttling retried with backoff."""

from __future__ import annotations

import time

import pytest
from botocore.awsrequest import AWSResponse
from ci_testkit import free_port

from ci.aws import clients as aws
from ci.errors import AwsAccessError


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_is_one_clear_sentence(no_credentials):
    with pytest.raises(AwsAccessError, match="no AWS credentials found"):
        aws.make_session("us-east-1")


def test_cli_without_credentials_exits_3(no_credentials, stacks, mlops):
    result = mlops("packages", "--stack", "dev", "--outputs-from", "preview")
    assert result.code == 3
    assert "no AWS credentials found" in result.err and "Traceback" not in result.err


def test_unreachable_emulator_fails_fast_and_says_so(stacks, mlops, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    started = time.monotonic()
    result = mlops("packages", "--stack", "dev", "--outputs-from", "preview", "--json")
    assert result.code == 3
    assert f"the AWS emulator at {url}" in result.err and "moto_server" in result.err
    assert result.json["ok"] is False and result.json["exitCode"] == 3
    assert time.monotonic() - started < 30


def _throttle(times: int, calls: list):
    def handler(request, **kwargs):
        calls.append(request.url)
        if len(calls) <= times:
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
            return AWSResponse(request.url, 400, {"x-amzn-errortype": "ThrottlingException"}, _Raw(body))
        return None

    return handler


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def test_throttling_is_retried_with_backoff(emulator):
    session = aws.make_session("us-east-1")
    sm = session.client("sagemaker")
    calls: list = []
    sm.meta.events.register("before-send.sagemaker.ListModelPackageGroups", _throttle(2, calls))
    response = sm.list_model_package_groups()
    assert len(calls) == 3
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_throttling_past_every_retry_is_a_clear_error(emulator, monkeypatch):
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    session = aws.make_session("us-east-1")
    sm = session.client("sagemaker")
    calls: list = []
    sm.meta.events.register("before-send.sagemaker.ListModelPackageGroups", _throttle(99, calls))
    with (
        pytest.raises(AwsAccessError, match=r"throttled ListModelPackageGroups after 2 attempts"),
        aws.aws_errors(),
    ):
        sm.list_model_package_groups()
    assert len(calls) == 2


def test_every_client_of_the_session_points_at_the_emulator(emulator):
    session = aws.make_session("us-east-1")
    for service in ("s3", "sts", "sagemaker", "iam", "logs", "sns", "cloudwatch", "ecr"):
        assert session.client(service).meta.endpoint_url == emulator
    assert session.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_a_non_http_endpoint_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:5000")
    with pytest.raises(AwsAccessError, match="not an http"):
        aws.make_session("us-east-1")


def test_an_aws_refusal_is_one_line_not_a_traceback(emulator, stacks, mlops):
    # the dev stack's resources were never created in this emulator: S3 says NoSuchBucket
    result = mlops("train", "--stack", "dev", "--outputs-from", "preview", "--local", "--synthetic", "100", "--json")
    assert result.code == 1, result
    assert "AWS refused" in result.err and "NoSuchBucket" in result.err and "Traceback" not in result.err


def test_a_frozen_endpoint_fails_within_a_minute_by_default():
    """Issue 11: default retries against an endpoint that never answers took about 8 minutes."""
    assert aws.worst_case_seconds(aws.max_attempts()) < 60


def test_a_frozen_endpoint_is_a_clear_error(monkeypatch):
    """A server on 127.0.0.1 that accepts connections and never answers: a one-line AwsAccessError."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", 0.3)
    try:
        session = aws.make_session("us-east-1")
        started = time.monotonic()
        with pytest.raises(AwsAccessError, match=r"did not answer within 0\.3 s, 2 attempts"), aws.aws_errors():
            session.client("sagemaker").list_model_package_groups()
        assert time.monotonic() - started < 10
    finally:
        listener.close()


@pytest.mark.parametrize("value", ["many", "0", "-1", "99"])
def test_a_bad_attempt_count_is_refused(monkeypatch, value):
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", value)
    with pytest.raises(AwsAccessError, match="MLOPS_AWS_MAX_ATTEMPTS"):
        aws.retry_config()


def test_a_connection_reset_is_a_clear_error(monkeypatch):
    """A server on 127.0.0.1 that closes every connection it accepts: no traceback, one sentence."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def reset_all():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # RST

    thread = threading.Thread(target=reset_all, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    try:
        # RST at connect (the reachability probe or the call): unreachable; RST after the request went
        # out: closed, not "unreachable". Which one a reset lands on is a race, either is one clear sentence.
        with (
            pytest.raises(AwsAccessError, match=r"unreachable|closed the connection after the request was sent"),
            aws.aws_errors(),
        ):
            aws.make_session("us-east-1").client("sagemaker").list_model_package_groups()
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_request_aws_would_refuse_is_not_sent(emulator):
    """AWS rule: BOTOCORE-MODEL. botocore's client checks types and required members only; lengths,
    patterns and sizes from its model are checked before any SageMaker request leaves."""
    session = aws.make_session("us-east-1")
    sm = session.client("sagemaker")
    with pytest.raises(aws.AwsRuleError, match=r"CreateModelPackageGroup not sent.*ModelPackageGroupName"):
        sm.create_model_package_group(ModelPackageGroupName="churn_dev!")
    metadata = {f"k{i}": "v" for i in range(51)}  # SageMaker holds at most 50 keys
    with pytest.raises(aws.AwsRuleError, match="CustomerMetadataProperties"):
        sm.create_model_package(ModelPackageGroupName="churn-dev", CustomerMetadataProperties=metadata)
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []  # nothing reached the service


def test_a_dropped_response_is_not_reported_as_an_unreachable_emulator(monkeypatch):
    """A response lost after the request was sent (botocore's ConnectionClosedError) has its own
    sentence: the endpoint was reached, the request may have been served, run again."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    dropped = str(aws.translate(ConnectionClosedError(endpoint_url="http://127.0.0.1:5000/")))
    assert "unreachable" not in dropped
    assert "after the request was sent" in dropped and "may have been served" in dropped
    refused = str(aws.translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:5000/")))
    assert "unreachable" in refused  # a refused connection still is
