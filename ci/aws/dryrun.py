"""An AWS session that answers every call itself, so a dry run shows the SDK's own request.

`mlops train --dry-run` runs the real sagemaker SDK path (ModelTrainer builds the
CreateTrainingJob request, stages the code, names the job) against a boto3 session whose
clients never reach the network: a `before-call` handler on the botocore session answers each
operation with a canned, empty-but-valid result (the staging bucket exists, uploads succeed)
and records it; the target operation's parameters are captured after botocore has validated
them against the service model, and the call is stopped there. A `before-send` guard refuses
anything that would still go out on the wire. The request printed is therefore exactly the one
boto3 would send, not a copy we assemble ourselves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse

DRY_RUN_ACCOUNT = "000000000000"
DRY_RUN_CREDENTIALS = {"aws_access_key_id": "dry-run", "aws_secret_access_key": "dry-run"}


class Captured(Exception):
    """Raised from the target call's before-call handler: the request was captured, stop here."""


class _EmptyBody:
    def stream(self, **_):
        yield b""


@dataclass
class Recorder:
    """What the SDK asked AWS for during a dry run, and the one request we came for."""

    service: str
    operation: str
    default_bucket: str
    calls: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None

    def canned(self, operation: str) -> dict[str, Any]:
        """The least a real answer carries, for the calls the SDK makes before the target one."""
        answers: dict[str, dict[str, Any]] = {
            "ListBuckets": {"Buckets": [{"Name": self.default_bucket, "CreationDate": datetime.now(UTC)}]},
            "GetCallerIdentity": {
                "Account": DRY_RUN_ACCOUNT,
                "Arn": f"arn:aws:sts::{DRY_RUN_ACCOUNT}:assumed-role/dry-run/dry-run",
                "UserId": "dry-run",
            },
            "PutObject": {"ETag": '"dry-run"'},
            "CreateMultipartUpload": {"UploadId": "dry-run"},
            "UploadPart": {"ETag": '"dry-run"'},
        }
        return answers.get(operation, {})


def offline_session(region: str, default_bucket: str, service: str, operation: str) -> tuple[Any, Recorder]:
    """A boto3 session on which `service.operation` is captured (not sent) and every other call is answered."""
    recorder = Recorder(service, operation, default_bucket)
    core = botocore.session.Session()

    def on_params(params, model, **_):
        name = model.name
        if name in ("PutObject", "CreateMultipartUpload"):
            recorder.uploads.append(f"s3://{params.get('Bucket')}/{params.get('Key')}")
        if model.service_model.service_name == service and name == operation:
            recorder.request = copy.deepcopy(params)

    def on_call(model, **_):
        name = model.name
        recorder.calls.append(f"{model.service_model.service_name}:{name}")
        if model.service_model.service_name == service and name == operation:
            raise Captured(operation)
        return AWSResponse("https://dry-run.invalid", 200, {}, _EmptyBody()), recorder.canned(name)

    def refuse_send(request, **_):
        raise RuntimeError(f"dry run: refused to send {request.method} {request.url}")

    # provide-client-params sees the caller's parameters; botocore validates them against the
    # service model before before-call, so a request that reaches on_call is a valid one.
    core.register("provide-client-params", on_params)
    core.register("before-call", on_call)
    core.register("before-send", refuse_send)
    session = boto3.session.Session(botocore_session=core, region_name=region, **DRY_RUN_CREDENTIALS)
    return session, recorder
