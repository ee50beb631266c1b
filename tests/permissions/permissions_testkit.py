"""The roles CI acts as, read from the offline previews, and who makes which call.

Policies come from the preview graphs (Output-derived ARNs resolved to the mocks' values):
the pipeline role's inline policy from the stack's preview, the deploy policy and the
boundary from the bootstrap program's preview. KMS keys are resolved per environment
(each stack's preview has its own key), so a cross-environment read is really checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache

from infra.bootstrap.preview import preview_bootstrap
from infra.preview import ACCOUNT_ID, Preview, preview_stack
from kernel.iam_eval import Request, evaluate, matching_statements
from kernel.permissions import Call, requests_for

REGION = "us-east-1"
APPROVED = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package/churn-dev/1"
ENVIRONMENTS = ("dev", "staging", "prod")
PIPELINE_POLICY = "identity-deployer-pipeline"  # the stack's GitHub (pipeline) role's inline policy
APPROVER_POLICY = "identity-approver-permissions"
MONITOR_POLICY = "identity-monitor-permissions"


@cache
def stack_preview(stack: str, approved: bool = False) -> Preview:
    return preview_stack(stack, {"mlops:approvedPackages": {"churn": APPROVED}} if approved else None)


@lru_cache(maxsize=1)
def bootstrap() -> Preview:
    return preview_bootstrap()


def policy_of(preview: Preview, name: str) -> dict:
    (record,) = [r for r in preview.resources if r["name"] == name]
    return json.loads(record["props"]["policy"])


def boundary() -> dict:
    return policy_of(bootstrap(), "deploy-boundary")


@dataclass
class Role:
    """A role as IAM evaluates it: identity policies and the permissions boundary it carries."""

    name: str
    identity: list[dict]
    boundary: list[dict] | None

    def decide(self, request: Request) -> str:
        return evaluate(request, self.identity, self.boundary)

    def without(self, sid: str) -> Role:
        """The same role with one statement (by Sid) removed from its identity policies."""
        stripped = [{**p, "Statement": [s for s in p["Statement"] if s.get("Sid") != sid]} for p in self.identity]
        assert stripped != self.identity, f"no statement {sid} in {self.name}"
        return Role(self.name, stripped, self.boundary)

    def allowing(self, request: Request) -> list[str]:
        return [s.get("Sid", "?") for s in matching_statements(request, self.identity)]


def pipeline_role(stack: str) -> Role:
    return Role(f"{stack} pipeline", [policy_of(stack_preview(stack), PIPELINE_POLICY)], [boundary()])


def approver_role(stack: str) -> Role:
    return Role(f"{stack} approver", [policy_of(stack_preview(stack), APPROVER_POLICY)], [boundary()])


def monitor_role(stack: str) -> Role:
    return Role(f"{stack} monitor", [policy_of(stack_preview(stack), MONITOR_POLICY)], [boundary()])


def ci_role(command: list[str]) -> Role:
    """The role a command runs as in CI: approve/reject as the approver (approve.yml), monitor as
    the monitor (drift.yml), verify as the deploy role right after `pulumi up` (pulumi-up.yml),
    everything else as the pipeline role of its stack."""
    if command[0] == "verify":
        return deploy_role()
    stack = role_stack(command)
    if command[0] in ("approve", "reject"):
        return approver_role(stack)
    if command[0] == "monitor":
        return monitor_role(stack)
    return pipeline_role(stack)


def deploy_role() -> Role:
    return Role("deploy", [policy_of(bootstrap(), "deploy-permissions")], [boundary()])


def bucket_key(bucket: str) -> tuple[str, list[str]] | None:
    """The preview's KMS key of the environment a bucket belongs to, with its alias."""
    for env in ENVIRONMENTS:
        if bucket.startswith(f"mlops-{env}-"):
            return stack_preview(env).outputs["kmsKeyArn"], [f"alias/mlops-{env}"]
    return None


def role_stack(command: list[str]) -> str:
    """The stack whose pipeline role runs a command in CI (.github/workflows): --stack/--to/--env,
    else the environment of the model package it names (approve, reproduce: dev)."""
    for flag in ("--stack", "--to", "--env"):
        if flag in command:
            return command[command.index(flag) + 1]
    for arg in command:
        if ":model-package/" in arg:
            return arg.rsplit("/", 2)[1].rsplit("-", 1)[1]
    raise ValueError(f"no role for command {command}")


def requests(call: Call) -> list[Request]:
    return requests_for(call, REGION, ACCOUNT_ID, bucket_key)
