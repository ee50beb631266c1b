"""The stacks we ship pass their own policies: no mandatory violation, as shipped and once a model is deployed."""

from __future__ import annotations

import pytest
from policy_testkit import audit, deployed, stack_records

STACKS = ("dev", "staging", "prod", "local")
# Documented in docs/policies.md: the deployer may start training jobs on any instance type until
# infra/identity.py adds a sagemaker:InstanceTypes condition; the rule is advisory by design.
KNOWN_ADVISORY = {"iam-training-instance-type-condition"}


@pytest.mark.parametrize("with_model", [False, True], ids=["shipped", "model-deployed"])
@pytest.mark.parametrize("stack", STACKS)
def test_no_mandatory_violations(stack, with_model):
    records, ctx = stack_records(stack, deployed(stack) if with_model else None)
    result = audit(records, ctx)
    assert result.mandatory == [], [v.message for v in result.mandatory]
    assert {v.rule for v in result.violations} <= KNOWN_ADVISORY
    assert result.suppressed == [] and result.expired_suppressions == []
    assert len(result.rules_run) >= 35


def test_deployed_prod_exercises_the_endpoint_rules():
    records, ctx = stack_records("prod", deployed("prod"))
    result = audit(records, ctx)
    for rule in (
        "sagemaker-endpoint-5xx-alarm",
        "sagemaker-endpoint-latency-alarm",
        "sagemaker-endpoint-rollout-rollback",
        "sagemaker-endpoint-data-capture",
        "cost-within-budget",
        "tags-required",
    ):
        assert rule in result.rules_run
    assert sum(r.type.startswith("aws:sagemaker/endpoint") for r in records) == 2


def test_prod_without_its_private_network_is_a_mandatory_violation():
    """Removing the VPC from prod (the stack's own network switched off, no VPC brought) fails the audit."""
    records, ctx = stack_records("prod", {"mlops:network": {"enabled": False}})
    result = audit(records, ctx)
    assert "network-private-prod" in {v.rule for v in result.mandatory}
