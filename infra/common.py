"""Small helpers every component shares: naming, tags and IAM documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi

Statement = dict[str, Any]  # one IAM policy statement; values may hold Outputs
READ_OBJECTS = ("s3:GetObject", "s3:GetObjectVersion")  # an object, and any version of it


class Component(pulumi.ComponentResource):
    """One component of the stack: every resource it makes takes `self.child` as options, so it is
    the component's child in the graph and shares its provider."""

    def __init__(self, token: str, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(token, name, None, opts)
        self.child = pulumi.ResourceOptions(parent=self)


def physical_name(stack: str, *parts: str) -> str:
    """Deterministic names (`mlops-dev-data-…`) so the pipeline and the local backend find resources."""
    return "-".join(["mlops", stack, *parts])


def content_hash(*values: Any, length: int = 8) -> str:
    """Short stable digest of a resource's content, for names that must change when content does."""
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def policy_document(statements: list[Statement]) -> pulumi.Output[str]:
    """An IAM policy document as a JSON string; statements may hold Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def bucket_and_objects(bucket_arn: pulumi.Input[str]) -> list[pulumi.Input[str]]:
    """A bucket and every object in it, as IAM resources."""
    return [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]


def pass_role(sid: str, role_arn: pulumi.Input[str], service: str = "sagemaker.amazonaws.com") -> Statement:
    """iam:PassRole of the named role(s) to one service only (the iam_escalation rule's fix)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": role_arn,
        "Condition": {"StringEquals": {"iam:PassedToService": service}},
    }


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> Statement:
    """The statement that makes a bucket TLS-only."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": bucket_and_objects(bucket_arn),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def upstream_objects(upstream: tuple[str, ...], account: pulumi.Input[str], prefix: str) -> list[pulumi.Output[str]]:
    """Object ARNs under `prefix` in each upstream environment's artifact bucket (`mlops-<env>-artifacts-<acct>`)."""
    return [
        pulumi.Output.concat("arn:aws:s3:::", physical_name(up, "artifacts"), "-", account, prefix) for up in upstream
    ]
