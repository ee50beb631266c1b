"""The same rules as Pulumi CrossGuard policies, for `pulumi preview --policy-pack policies`.

Each resource rule becomes a `ResourceValidationPolicy`, each stack rule a
`StackValidationPolicy`. Stack facts (environment, GPU allowlist, budget, required tags,
suppressions) arrive through every policy's config, in the schema below; `mlops audit --stack X
--policy-config FILE` writes that file, with each rule's enforcement level for the stack, for
`pulumi preview -s X --policy-pack policies --policy-pack-config FILE`.

Without a config file the pack still runs: rules that need an unknown fact stay silent, critical
rules are mandatory and the rest advisory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.context import ENVIRONMENTS, PolicyContext
from policies.graph import StackGraph
from policies.records import from_policy_resource, from_validation_args, provider_record
from policies.rules import RULES, ResourceRule, Rule, StackRule

PACK_NAME = "mlops-sagemaker"

PACK_CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "stack": {"type": "string", "description": "stack name"},
        "environment": {"type": "string", "enum": list(ENVIRONMENTS), "description": "environment tier"},
        "region": {"type": "string", "description": "AWS region, for prices"},
        "models": {"type": "array", "items": {"type": "string"}},
        "allowedTrainingInstanceTypes": {"type": "array", "items": {"type": "string"}},
        "hasVpc": {"type": "boolean"},
        "requiredTags": {"type": "array", "items": {"type": "string"}},
        "monthlyBudgetUsd": {"type": "number", "exclusiveMinimum": 0},
        "githubRepository": {"type": "string", "description": "owner/name trusted through GitHub OIDC"},
        "suppressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "resource", "reason", "expires"],
                "properties": {
                    "rule": {"type": "string"},
                    "resource": {"type": "string"},
                    "reason": {"type": "string"},
                    "expires": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                },
            },
        },
    }
)

_SEVERITY = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH, "critical": Severity.CRITICAL}
_LEVEL = {
    "advisory": EnforcementLevel.ADVISORY,
    "mandatory": EnforcementLevel.MANDATORY,
    "disabled": EnforcementLevel.DISABLED,
}


def _context(config: Any) -> PolicyContext:
    return PolicyContext.from_pack_config(dict(config or {}))


def _suppressed(ctx: PolicyContext, rule: Rule, urn: str, name: str) -> bool:
    return any(s.matches(rule.id, urn, name) and not s.expired(ctx.today) for s in ctx.suppressions)


def _resource_validator(rule: ResourceRule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = from_validation_args(args)
        if resource.canonical_type not in rule.types:
            return
        ctx = _context(args.get_config())
        if not rule.applies_in(ctx)[0] or _suppressed(ctx, rule, resource.urn, resource.name):
            return
        provider = provider_record(args.provider)
        if provider is not None:
            from dataclasses import replace

            resource = replace(resource, provider=provider.urn)
        graph = StackGraph([resource] + ([provider] if provider is not None else []))
        for message in rule.check(resource, ctx, graph):
            report_violation(message, None)

    return validate


def _stack_validator(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        ctx = _context(args.get_config())
        if not rule.applies_in(ctx)[0]:
            return
        graph = StackGraph(from_policy_resource(r) for r in args.resources)
        for resource, message in rule.check(graph, ctx):
            target = resource or graph.stack
            if target is not None and _suppressed(ctx, rule, target.urn, target.name):
                continue
            report_violation(message, target.urn if target is not None else None)

    return validate


def default_level(rule: Rule) -> EnforcementLevel:
    """The level a policy has when no config file sets one: pinned, else mandatory for critical rules."""
    if rule.pinned:
        return _LEVEL[rule.pinned]
    return EnforcementLevel.MANDATORY if rule.severity == "critical" else EnforcementLevel.ADVISORY


class _PolicyText(TypedDict):
    """What a CrossGuard policy says about its rule, the same for either kind."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    config_schema: PolicyConfigSchema
    severity: Severity
    tags: list[str]
    remediation_steps: str


def build_policies(rules: list[Rule] | None = None) -> list[Policy]:
    policies: list[Policy] = []
    for rule in rules or RULES:
        text = _PolicyText(
            name=rule.id,
            description=rule.description,
            enforcement_level=default_level(rule),
            config_schema=PACK_CONFIG_SCHEMA,
            severity=_SEVERITY[rule.severity],
            tags=[rule.family],
            remediation_steps=rule.fix,
        )
        if isinstance(rule, ResourceRule):
            policies.append(ResourceValidationPolicy(validate=_resource_validator(rule), **text))
        elif isinstance(rule, StackRule):
            policies.append(StackValidationPolicy(validate=_stack_validator(rule), **text))
    return policies


def pack_config(ctx: PolicyContext, rules: list[Rule] | None = None) -> dict[str, Any]:
    """A `--policy-pack-config` document for one stack: each rule's level there, and the stack facts."""
    facts = ctx.to_pack_config()
    return {
        rule.id: {"enforcementLevel": ctx.enforcement_for(rule.id, rule.severity, rule.pinned), **facts}
        for rule in rules or RULES
    }
