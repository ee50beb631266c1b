"""Enforcement levels per environment, suppressions with expiry, and the audit summary."""

from __future__ import annotations

from datetime import date

import pytest
from policy_testkit import TODAY, ctx, res

from policies.context import PolicyContext, Suppression, infer_context
from policies.engine import evaluate as evaluate_all
from policies.rules import RULES_BY_ID

UNROTATED = res("aws:kms/key:Key", "storage-key", {"enableKeyRotation": False}, id="k-1")


def evaluate(records, context):
    """Only the rotation rule: these tests are about levels and suppressions, not the catalogue."""
    return evaluate_all(records, context, [RULES_BY_ID["kms-key-rotation"]])


@pytest.mark.parametrize(
    "environment, default, overrides, expected",
    [
        ("dev", None, {}, "advisory"),
        ("local", None, {}, "advisory"),
        ("staging", None, {}, "mandatory"),
        ("prod", None, {}, "mandatory"),
        (None, None, {}, "mandatory"),
        ("prod", "advisory", {}, "advisory"),
        ("dev", "mandatory", {}, "mandatory"),
        ("prod", "mandatory", {"kms-key-rotation": "advisory"}, "advisory"),
        ("dev", None, {"kms-key-rotation": "disabled"}, "disabled"),
    ],
)
def test_enforcement_of_an_ordinary_rule(environment, default, overrides, expected):
    c = ctx(environment=environment, default_enforcement=default, enforcement=overrides)
    assert c.enforcement_for("kms-key-rotation", "high") == expected


def test_critical_rules_are_mandatory_even_in_dev_unless_overridden_by_id():
    dev = ctx(environment="dev", default_enforcement="advisory")
    assert dev.enforcement_for("s3-public-access-block", "critical") == "mandatory"
    lowered = ctx(environment="dev", enforcement={"s3-public-access-block": "advisory"})
    assert lowered.enforcement_for("s3-public-access-block", "critical") == "advisory"


def test_pinned_rules_keep_their_level_over_the_stack_default():
    rule = RULES_BY_ID["iam-training-instance-type-condition"]
    prod = ctx(environment="prod", default_enforcement="mandatory")
    assert prod.enforcement_for(rule.id, rule.severity, rule.pinned) == "advisory"
    raised = ctx(environment="prod", enforcement={rule.id: "mandatory"})
    assert raised.enforcement_for(rule.id, rule.severity, rule.pinned) == "mandatory"


def test_levels_drive_the_exit_code():
    assert evaluate([UNROTATED], ctx(environment="prod")).exit_code == 1
    advisory = evaluate([UNROTATED], ctx(environment="dev"))
    assert advisory.exit_code == 0 and [v.enforcement for v in advisory.violations] == ["advisory"]
    disabled = evaluate([UNROTATED], ctx(environment="prod", enforcement={"kms-key-rotation": "disabled"}))
    assert disabled.violations == [] and "kms-key-rotation" in disabled.not_evaluated


@pytest.mark.parametrize("resource", ["storage-key", UNROTATED.urn, "k-1"])
def test_suppression_by_name_urn_or_id_is_reported_not_enforced(resource):
    s = Suppression("kms-key-rotation", resource, "imported key, rotated by the HSM team", date(2026, 12, 31))
    result = evaluate([UNROTATED], ctx(environment="prod", suppressions=(s,)))
    assert result.violations == [] and result.exit_code == 0
    assert [v.suppression for v in result.suppressed] == [s]
    assert result.summary()["suppressed"] == 1 and result.to_json()["suppressed"][0]["suppression"]["reason"]


def test_expired_suppression_no_longer_applies_and_is_reported():
    s = Suppression("kms-key-rotation", "storage-key", "temporary", date(2026, 1, 1))
    result = evaluate([UNROTATED], ctx(environment="prod", suppressions=(s,), today=TODAY))
    assert result.exit_code == 1 and result.expired_suppressions == [s]


def test_suppression_for_another_rule_or_resource_is_unused():
    other_rule = Suppression("ecr-immutable-tags", "storage-key", "x", date(2027, 1, 1))
    other_resource = Suppression("kms-key-rotation", "another-key", "x", date(2027, 1, 1))
    result = evaluate([UNROTATED], ctx(environment="prod", suppressions=(other_rule, other_resource)))
    assert result.exit_code == 1 and set(result.unused_suppressions) == {other_rule, other_resource}


def test_summary_shape():
    summary = evaluate([UNROTATED], ctx(environment="prod")).summary()
    assert summary["violations"] == summary["mandatory"] == 1 and summary["bySeverity"] == {"high": 1}
    assert summary["passed"] is False and "notEvaluated" in summary


def test_pack_config_round_trip_and_validation():
    c = ctx(
        stack="prod",
        environment="prod",
        region="us-east-1",
        models=("churn",),
        allowed_training_types=("ml.g5.xlarge",),
        has_vpc=False,
        required_tags=("owner",),
        monthly_budget_usd=100.0,
        github_repository="o/r",
        suppressions=(Suppression("kms-key-rotation", "k", "why", date(2027, 1, 1)),),
    )
    back = PolicyContext.from_pack_config(c.to_pack_config(), today=c.today)
    for field in (
        "stack",
        "environment",
        "region",
        "models",
        "allowed_training_types",
        "has_vpc",
        "required_tags",
        "monthly_budget_usd",
        "github_repository",
        "suppressions",
    ):
        assert getattr(back, field) == getattr(c, field), field
    with pytest.raises(ValueError, match="'environment'"):
        PolicyContext.from_pack_config({"environment": "qa"})
    with pytest.raises(ValueError, match=r"suppressions\[0\].expires"):
        PolicyContext.from_pack_config(
            {"suppressions": [{"rule": "r", "resource": "x", "reason": "y", "expires": "soon"}]}
        )


def test_context_from_the_real_stack_config():
    from kernel.stack_config import load_stack_config

    c = PolicyContext.from_stack_config(load_stack_config("prod"))
    assert (c.environment, c.default_enforcement, c.monthly_budget_usd) == ("prod", "mandatory", 6000.0)
    assert {"environment", "owner", "cost-center"} <= set(c.required_tags)
    assert "ml.p5.48xlarge" in c.allowed_training_types and c.github_repository


def test_inferred_context_reads_a_consistent_environment_tag():
    tagged = [res("aws:kms/key:Key", "k", {"tags": {"environment": "staging"}})]
    assert infer_context(tagged).environment == "staging"
    mixed = tagged + [res("aws:kms/key:Key", "k2", {"tags": {"environment": "prod"}})]
    inferred = infer_context(mixed)
    assert inferred.environment is None and any("environment unknown" in n for n in inferred.notes)
