"""Fixtures for the delivery pipeline: moto's server on loopback, a copy of the stacks, the CLI.

Every test that talks to AWS goes through moto's HTTP server on 127.0.0.1 (the SDK too),
reset before each test. Stack files are copied to a temporary folder so promotions edit a
copy. `mlops` runs in-process through `ci.cli.main`, capturing its stdout JSON.
"""

from __future__ import annotations

import logging
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ci_testkit import REGION, REPO, CliResult


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def emulator(moto_url, monkeypatch, tmp_path):
    """A clean emulator and an environment that points every AWS call at it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "4")
    # what ci.aws.clients.sagemaker_sdk_session would set for the process, set here so it is undone after the test
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return moto_url


@pytest.fixture
def stacks(tmp_path, monkeypatch) -> Path:
    """A copy of stacks/ that tests may edit; commands find it through MLOPS_STACKS_DIR."""
    dest = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", dest)
    monkeypatch.setenv("MLOPS_STACKS_DIR", str(dest))
    return dest


@pytest.fixture
def boto(emulator):
    """boto3 clients on the emulator, for arranging and asserting."""
    import boto3

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(name: str):
        return session.client(name, endpoint_url=emulator)

    return client


@pytest.fixture
def mlops(capsys):
    """Run `mlops ARGS...` in-process; returns exit code, stdout and stderr."""
    from ci.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def sagemaker(emulator, monkeypatch):
    """Training jobs driven as SageMaker would (see ci_sagemaker_sim.py); set `.outcome` to script one."""
    from ci_sagemaker_sim import SageMakerSimulator

    return SageMakerSimulator(emulator).install(monkeypatch)


# --- opt-in: record the AWS calls each `mlops` command makes (tests/permissions proves them) ---------

RECORD_ENV = "MLOPS_RECORD_AWS_CALLS"  # a JSON Lines file every test of this run appends its calls to


class AwsCallRecorder:
    """Every AWS call made while an `mlops` command runs: (command line, service, operation, params).

    Hooks botocore's `before-parameter-build` event (the caller's parameters, before serialising)
    on each botocore session `ci.aws.clients` creates, and labels calls with the command line through
    the CLI's dispatch; production code is untouched. Calls made outside a command (arranging, asserting) are
    not recorded.
    """

    def __init__(self):
        self.calls: list[dict] = []
        self.command: list[str] | None = None

    def install(self, monkeypatch) -> AwsCallRecorder:
        import ci.aws.clients
        import ci.commands.framework as framework

        make_botocore_session, dispatch = ci.aws.clients._botocore_session, framework.dispatch

        def botocore_session():
            session = make_botocore_session()
            session.register("before-parameter-build", self._record)
            return session

        def labelled_dispatch(root, argv):
            self.command = [str(a) for a in argv]
            try:
                return dispatch(root, argv)
            finally:
                self.command = None

        monkeypatch.setattr(ci.aws.clients, "_botocore_session", botocore_session)
        monkeypatch.setattr(framework, "dispatch", labelled_dispatch)
        return self

    def _record(self, params, model, **_):
        if self.command is not None:
            self.calls.append(
                {
                    "command": self.command,
                    "service": model.service_model.service_name,
                    "operation": model.name,
                    "params": _loggable(params),
                }
            )


def _loggable(value):
    """Parameters as JSON: payloads and streams become a marker, long strings are cut."""
    if isinstance(value, dict):
        return {k: _loggable(v) for k, v in value.items() if k not in ("Body", "Metadata")}
    if isinstance(value, (list, tuple)):
        return [_loggable(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, str):
        return value[:500]
    return f"<{type(value).__name__}>"


@pytest.fixture
def aws_calls(monkeypatch) -> AwsCallRecorder:
    """Opt in to recording the AWS calls of the `mlops` commands a test runs (see AwsCallRecorder)."""
    return AwsCallRecorder().install(monkeypatch)


@pytest.fixture(autouse=True)
def _record_aws_calls_when_asked(request, monkeypatch):
    """With MLOPS_RECORD_AWS_CALLS=<file>, append every test's recorded calls to that file."""
    import json
    import os

    target = os.environ.get(RECORD_ENV)
    if not target:
        yield
        return
    recorder = AwsCallRecorder().install(monkeypatch)
    yield
    with open(target, "a") as out:
        for call in recorder.calls:
            out.write(json.dumps({"test": request.node.nodeid, **call}, sort_keys=True) + "\n")


@pytest.fixture
def offline(monkeypatch):
    """No emulator, and any attempt to open a network connection fails the test (dry runs)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"a dry run opened a connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
