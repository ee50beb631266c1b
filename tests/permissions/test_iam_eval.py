"""The policy evaluator decides as IAM does (kernel/iam_eval.py)."""

from __future__ import annotations

import pytest

from kernel.iam_eval import ALLOW, DENY, IMPLICIT_DENY, Request, condition_holds, evaluate


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_LOGS = {"Effect": "Allow", "Action": "logs:Get*", "Resource": "arn:aws:logs:*:1:log-group:/aws/sagemaker/*"}


def test_explicit_deny_wins_and_nothing_allowed_is_denied():
    """AWS rule: IAM-EVALUATION (explicit deny > allow > implicit deny)."""
    request = Request("logs:GetLogEvents", "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/TrainingJobs")
    assert evaluate(request, [policy(ALLOW_LOGS)]) == ALLOW
    deny = {"Effect": "Deny", "Action": "logs:*", "Resource": "*"}
    assert evaluate(request, [policy(ALLOW_LOGS), policy(deny)]) == DENY
    assert evaluate(Request("logs:PutLogEvents", request.resource), [policy(ALLOW_LOGS)]) == IMPLICIT_DENY


def test_boundary_caps_what_the_identity_policy_allows():
    """AWS rule: IAM-EVALUATION (a permissions boundary must allow too, and its deny wins)."""
    request = Request("logs:GetLogEvents", "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/TrainingJobs")
    assert evaluate(
        request, [policy(ALLOW_LOGS)], [policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    ) == (IMPLICIT_DENY)
    assert (
        evaluate(request, [policy(ALLOW_LOGS)], [policy({"Effect": "Allow", "Action": "*", "Resource": "*"})]) == ALLOW
    )


def test_actions_are_case_insensitive_resources_are_not_and_not_forms_invert():
    s = {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret*"}
    assert evaluate(Request("S3:GETOBJECT", "arn:aws:s3:::data/x"), [policy(s)]) == ALLOW
    assert evaluate(Request("iam:PassRole", "arn:aws:s3:::data/x"), [policy(s)]) == IMPLICIT_DENY
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::secret/x"), [policy(s)]) == IMPLICIT_DENY
    on = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::Data/?"}
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::Data/x"), [policy(on)]) == ALLOW
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::data/x"), [policy(on)]) == IMPLICIT_DENY
    # a request on no particular resource is covered only by a grant on every resource
    assert evaluate(Request("s3:ListAllMyBuckets"), [policy(on)]) == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("operator", "expected", "context", "holds"),
    [
        ("StringEquals", "a", {}, False),  # a key the request lacks: positive operators are false
        ("StringNotEquals", "a", {}, True),  # ...negated ones true
        ("StringEqualsIfExists", "a", {}, True),
        ("ForAllValues:StringEquals", ["a"], {}, True),  # vacuously true
        ("ForAnyValue:StringEquals", ["a"], {}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "b"]}, True),
        ("ForAllValues:StringEquals", ["a"], {"k": ["a", "c"]}, False),
        ("ForAnyValue:StringEquals", ["a"], {"k": ["c", "a"]}, True),
        ("StringLike", "mlops-*", {"k": "mlops-dev"}, True),
        ("ArnLike", "arn:aws:iam::1:policy/mlops-deploy/*", {"k": "arn:aws:iam::1:policy/mlops-deploy/x"}, True),
        ("ArnNotLike", "arn:aws:iam::1:policy/mlops-deploy/*", {"k": "arn:aws:iam::1:policy/other"}, True),
        ("Bool", "false", {"k": "true"}, False),
        ("Null", "true", {}, True),
        ("Null", "false", {"k": "x"}, True),
        ("NumericLessThanEquals", "3600", {"k": 7200}, False),
    ],
)
def test_condition_operators(operator, expected, context, holds):
    """AWS rule: IAM-CONDITION-KEYS (missing keys: positive operators false, ForAllValues vacuously true)."""
    assert condition_holds(operator, "k", expected, context) is holds


def test_condition_key_names_are_case_insensitive():
    assert condition_holds(
        "StringEquals", "Cloudwatch:Namespace", "MLOps/Drift", {"cloudwatch:namespace": "MLOps/Drift"}
    )
