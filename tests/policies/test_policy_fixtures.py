"""Real `pulumi stack export` files (pulumi-aws 5.42) audit to what they really violate, and nothing else."""

from __future__ import annotations

import pytest
from policy_testkit import FIXTURES, TODAY

from policies.audit import audit, target_from_state

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"shared fixtures not present at {FIXTURES}")

EXPECTED = {
    # a KMS key with rotation off; its (output-only) key policy grants kms:* to the account root: fine
    "kms-key.json": {("kms-key-rotation", "a")},
    # mutable tags and AES256; scan on push is on
    "ecr-repository.json": {("ecr-immutable-tags", "foo"), ("ecr-kms-encryption", "foo")},
    # an IAM role trusted by EC2 (a named service) and its instance profile: nothing to report
    "iam-instanceprofile.json": set(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_export_audits_to_exactly_its_real_violations(name):
    target = target_from_state(FIXTURES / name, today=TODAY)
    result = audit(target)
    assert {(v.rule, v.name) for v in result.violations} == EXPECTED[name]
    assert result.exit_code == (1 if EXPECTED[name] else 0)
    assert target.context.environment is None and target.context.notes


def test_export_judged_against_a_stack_config_adds_that_stacks_requirements():
    result = audit(target_from_state(FIXTURES / "kms-key.json", stack="prod", today=TODAY))
    rules = {v.rule for v in result.violations}
    # judged as prod: untagged, no budget, no registry group for prod's model, and no private network
    assert rules == {
        "kms-key-rotation",
        "tags-required",
        "cost-budget-exists",
        "sagemaker-model-package-group-exists",
        "network-private-prod",
    }
    assert all(v.enforcement == "mandatory" for v in result.violations)
