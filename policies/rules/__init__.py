"""The rule catalogue. Importing a family module registers its rules; `RULES` lists them all."""

from __future__ import annotations

from policies.rules import (  # noqa: F401  (registration)
    cost,
    ecr,
    iam,
    iam_escalation,
    kms,
    monitoring,
    network,
    resource_policies,
    s3,
    sagemaker,
    tags,
)
from policies.rules.base import FAMILIES, RULES, SEVERITIES, ResourceRule, Rule, StackRule

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

__all__ = ["FAMILIES", "RULES", "RULES_BY_ID", "SEVERITIES", "ResourceRule", "Rule", "StackRule"]
