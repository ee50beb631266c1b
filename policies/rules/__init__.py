"""The rule catalogue. Importing a family module registers its rules; `RULES` lists them all."""

from __future__ import annotations

from policies.rules import cost, ecr, iam, kms, monitoring, s3, sagemaker, tags  # noqa: F401  (registration)
from policies.rules.base import FAMILIES, RULES, SEVERITIES, Rule

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

__all__ = ["FAMILIES", "RULES", "RULES_BY_ID", "SEVERITIES", "Rule"]
