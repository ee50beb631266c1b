"""`pulumi up` runs as a deploy role made outside the stacks, that may do what every stack needs
and cannot change itself (defect 3). The bootstrap program runs under the same mocks as the stacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from permissions_testkit import REGION, bootstrap, boundary, deploy_role, stack_preview

from infra.bootstrap.preview import preview_bootstrap
from infra.preview import ACCOUNT_ID
from kernel.deploy_permissions import requests_for_resource
from kernel.iam_eval import ALLOW, DENY, Request, decide
from kernel.stack_config import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
STACKS = ("dev", "staging", "prod", "local")
BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-deploy/mlops-deploy-boundary"
DEPLOY_POLICY = f"arn:aws:iam::{ACCOUNT_ID}:policy/mlops-deploy/mlops-deploy"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-deploy/mlops-prod-deploy"
STACK_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-sagemaker-execution"


def resource_records():
    """Every resource of the four stacks, with a model approved where one can be."""
    for stack in STACKS:
        for record in stack_preview(stack, approved=stack != "local").resources:
            if record["custom"] and not record["type"].startswith("pulumi:providers:"):  # no AWS call
                yield stack, record


def pulumi_up_denials(role) -> list[str]:
    found = set()
    for stack, record in resource_records():
        for r in requests_for_resource(record, REGION, ACCOUNT_ID):
            decision = role.decide(r)
            if decision != ALLOW:
                found.add(f"{stack} {record['type']}: {r.action} on {r.resource} -> {decision}")
    return sorted(found)


def proved_types() -> set[str]:
    return {record["type"] for _, record in resource_records()}


def by_name(name: str) -> dict:
    (record,) = [r for r in bootstrap().resources if r["name"] == name]
    return record["props"]


# --- the bootstrap program's graph -----------------------------------------------------------


def test_bootstrap_owns_the_oidc_provider_boundary_and_one_deploy_role_per_environment():
    """AWS rule: IAM-OIDC-TRUST (aud and sub pinned; one provider per account, owned here)."""
    preview = bootstrap()
    provider = by_name("github-oidc")
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert preview.outputs["boundaryPolicyArn"] == BOUNDARY
    assert by_name("deploy-boundary")["path"] == by_name("deploy-permissions")["path"] == "/mlops-deploy/"
    assert set(preview.outputs["deployRoleArns"]) == {"dev", "staging", "prod"}
    for env, arn in preview.outputs["deployRoleArns"].items():
        role = by_name(f"deploy-{env}")
        assert arn == f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-deploy/mlops-{env}-deploy"
        assert role["permissionsBoundary"] == BOUNDARY
        (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Federated": preview.outputs["oidcProviderArn"]}
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        # the repository's customized subject (docs/pipeline.md): only pulumi-up.yml; staging and prod from main only
        workflow = "example-org/mlops-blueprint/.github/workflows/pulumi-up.yml"
        subject = f"repo:example-org/mlops-blueprint:environment:{env}:job_workflow_ref:{workflow}"
        aud = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
        if env == "dev":
            assert trust["Condition"] == {
                "StringEquals": aud,
                "StringLike": {"token.actions.githubusercontent.com:sub": [f"{subject}@*"]},
                "StringNotLike": {
                    "token.actions.githubusercontent.com:sub": "repo:example-org/mlops-blueprint:*@refs/pull/*"
                },
            }
        else:
            assert trust["Condition"] == {
                "StringEquals": {**aud, "token.actions.githubusercontent.com:sub": [f"{subject}@refs/heads/main"]}
            }
        attachment = by_name(f"deploy-{env}-permissions")
        assert attachment["role"] == f"mlops-{env}-deploy" and attachment["policyArn"] == DEPLOY_POLICY


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mlops-bootstrap:repository": "not a repo"}, "mlops-bootstrap:repository='not a repo'"),
        ({"mlops-bootstrap:environments": ["dev", "qa"]}, "mlops-bootstrap:environments=['dev', 'qa']"),
        ({"mlops-bootstrap:environments": []}, "must be a non-empty list"),
    ],
)
def test_bootstrap_config_errors_name_the_key_before_any_resource(overrides, message):
    with pytest.raises(ConfigError) as err:
        preview_bootstrap(config_overrides=overrides)
    assert message in str(err.value)


def test_no_stack_manages_a_role_that_could_deploy_it():
    """Defect 3: before, the stack's own GitHub role was the only one CI had for `pulumi up`."""
    for stack, record in resource_records():
        if record["type"] == "aws:iam/rolePolicy:RolePolicy":
            text = record["props"]["policy"]
            for action in ("sagemaker:CreateEndpoint", "iam:PutRolePolicy", "iam:CreateRole", "kms:CreateKey"):
                assert action not in text, (stack, record["name"], action)


# --- pulumi up, proved -------------------------------------------------------------------------


def test_pulumi_up_of_every_stack_is_allowed_for_the_deploy_role():
    """AWS rule: IAM-EVALUATION. Every resource type of the four stacks (a model approved): its create,
    read, update, delete and tag actions, derived from the Service Authorization Reference
    (kernel/deploy_permissions.py), on the resource's own ARN, within the boundary."""
    assert pulumi_up_denials(deploy_role()) == []
    assert len(proved_types()) >= 30


def test_the_deploy_proof_fails_when_a_statement_is_removed():
    denied = pulumi_up_denials(deploy_role().without("AlertTopics"))
    assert any("sns:CreateTopic" in d for d in denied)
    assert all(" sns:" in d or "sns/" in d for d in denied)


def test_docs_give_the_proved_resource_type_count():
    stated = re.search(r"(\d+) resource types", DOCS.read_text())
    assert stated, "docs/permissions.md must state 'N resource types'"
    assert int(stated.group(1)) == len(proved_types())


# --- the deploy role cannot change itself -------------------------------------------------------

SELF_CHANGES = [
    ("iam:UpdateAssumeRolePolicy", DEPLOY_ROLE, {}),
    ("iam:PutRolePolicy", DEPLOY_ROLE, {}),
    ("iam:DeleteRolePolicy", DEPLOY_ROLE, {}),
    ("iam:AttachRolePolicy", DEPLOY_ROLE, {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ("iam:DetachRolePolicy", DEPLOY_ROLE, {"iam:PolicyARN": DEPLOY_POLICY}),
    ("iam:DeleteRolePermissionsBoundary", DEPLOY_ROLE, {}),
    ("iam:PutRolePermissionsBoundary", DEPLOY_ROLE, {"iam:PermissionsBoundary": BOUNDARY}),
    ("iam:DeleteRole", DEPLOY_ROLE, {}),
    ("iam:TagRole", DEPLOY_ROLE, {}),
    ("iam:CreatePolicyVersion", BOUNDARY, {}),
    ("iam:SetDefaultPolicyVersion", BOUNDARY, {}),
    ("iam:DeletePolicy", BOUNDARY, {}),
    ("iam:CreatePolicyVersion", DEPLOY_POLICY, {}),
    # ...nor grow a stack role into a deploy role, or free one from the boundary
    ("iam:AttachRolePolicy", STACK_ROLE, {"iam:PolicyARN": DEPLOY_POLICY}),
    ("iam:DeleteRolePermissionsBoundary", STACK_ROLE, {}),
    ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-escape", {}),
    (
        "iam:CreateRole",
        f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-escape",
        {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"},
    ),
    ("iam:PutRolePermissionsBoundary", STACK_ROLE, {"iam:PermissionsBoundary": DEPLOY_POLICY}),
    ("iam:CreateOpenIDConnectProvider", "*", {}),
    ("iam:UpdateOpenIDConnectProviderThumbprint", f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/x", {}),
]


@pytest.mark.parametrize(("action", "resource", "context"), SELF_CHANGES)
def test_the_deploy_role_cannot_change_itself_its_policies_or_its_boundary(action, resource, context):
    """AWS rule: IAM-BOUNDARY-DELEGATION."""
    request = Request(action, resource, {"aws:RequestedRegion": REGION, **context})
    assert deploy_role().decide(request) == DENY
    assert decide(request, [boundary()]) == DENY  # and so may no role under the boundary (every mlops role)


def test_the_deploy_role_creates_stack_roles_only_with_the_boundary():
    """AWS rule: IAM-BOUNDARY-DELEGATION."""
    create = Request(
        "iam:CreateRole",
        f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-sagemaker-execution",
        {"aws:RequestedRegion": REGION, "iam:PermissionsBoundary": BOUNDARY},
    )
    assert deploy_role().decide(create) == ALLOW


def test_every_grant_of_every_stack_role_lies_within_the_boundary():
    """AWS rule: IAM-EVALUATION. The boundary every stack role carries must not silently cut what the
    role's own policy grants (the execution role's S3/KMS/ECR/Logs, the pipeline role's PassRole...)."""
    cut = []
    for stack in STACKS:
        for record in stack_preview(stack).resources:
            if record["type"] != "aws:iam/rolePolicy:RolePolicy":
                continue
            for s in json.loads(record["props"]["policy"])["Statement"]:
                if s["Effect"] != "Allow":
                    continue
                actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
                resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
                for action in actions:
                    for resource in resources:
                        if decide(Request(action, resource, {"aws:RequestedRegion": REGION}), [boundary()]) != ALLOW:
                            cut.append(f"{stack} {record['name']} {s.get('Sid')}: {action} on {resource}")
    assert cut == []
