"""Run the rules over a stack's records: verdicts with enforcement levels and suppressions applied."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from policies.context import PolicyContext, Suppression
from policies.graph import StackGraph
from policies.records import Resource
from policies.rules import RULES, ResourceRule, Rule, StackRule

# The verdict (and severity) of a rule that could not see what it judges: a secret it cannot decrypt.
CANNOT_VERIFY = "cannot-verify"


@dataclass(frozen=True)
class Violation:
    rule: str
    severity: str
    enforcement: str  # advisory | mandatory
    urn: str
    type: str
    name: str
    message: str
    suppression: Suppression | None = None
    verdict: str = "violation"  # violation | cannot-verify

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity,
            "enforcement": self.enforcement,
            "verdict": self.verdict,
            "urn": self.urn,
            "type": self.type,
            "message": self.message,
        }
        if self.suppression is not None:
            out["suppression"] = self.suppression.to_json()
        return out


@dataclass
class AuditResult:
    stack: str
    context: PolicyContext
    resources: int
    rules_run: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)  # active: not suppressed
    suppressed: list[Violation] = field(default_factory=list)
    expired_suppressions: list[Suppression] = field(default_factory=list)
    unused_suppressions: list[Suppression] = field(default_factory=list)
    not_evaluated: dict[str, str] = field(default_factory=dict)  # rule id -> why

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @property
    def cannot_verify(self) -> list[Violation]:
        return [v for v in self.violations if v.verdict == CANNOT_VERIFY]

    @property
    def exit_code(self) -> int:
        return 1 if self.mandatory else 0

    def summary(self) -> dict[str, Any]:
        by_severity: dict[str, int] = {}
        for v in self.violations:
            by_severity[v.severity] = by_severity.get(v.severity, 0) + 1
        return {
            "stack": self.stack,
            "environment": self.context.environment,
            "resources": self.resources,
            "rulesEvaluated": len(self.rules_run),
            "violations": len(self.violations),
            "mandatory": len(self.mandatory),
            "advisory": len(self.violations) - len(self.mandatory),
            "cannotVerify": len(self.cannot_verify),
            "bySeverity": by_severity,
            "suppressed": len(self.suppressed),
            "expiredSuppressions": [s.to_json() for s in self.expired_suppressions],
            "unusedSuppressions": [s.to_json() for s in self.unused_suppressions],
            "notEvaluated": dict(self.not_evaluated),
            "notes": list(self.context.notes),
            "passed": self.exit_code == 0,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "violations": [v.to_json() for v in self.violations],
            "suppressed": [v.to_json() for v in self.suppressed],
            "summary": self.summary(),
        }


def run_rule(rule: Rule, graph: StackGraph, ctx: PolicyContext) -> list[tuple[Resource | None, str]]:
    """The raw findings of one rule: (resource or None for the stack, message)."""
    if isinstance(rule, StackRule):
        return list(rule.check(graph, ctx))
    assert isinstance(rule, ResourceRule)  # the only two kinds
    found: list[tuple[Resource | None, str]] = []
    for resource in graph.of_type(*rule.types):
        found.extend((resource, message) for message in rule.check(resource, ctx, graph))
    return found


def cannot_verify(rule: Rule, graph: StackGraph) -> list[tuple[Resource, str]]:
    """A finding for each resource whose prop, which the rule must read, is a secret it cannot decrypt."""
    found = []
    for type_token, key in rule.blind_spots:
        for resource in graph.of_type(type_token):
            if key in resource.secret_keys:
                found.append(
                    (
                        resource,
                        f"{resource.label}: cannot verify {rule.id}: '{key}' is an encrypted secret in this state "
                        "file. Fix: audit a `pulumi stack export --show-secrets` file, or the stack's preview",
                    )
                )
    return found


def cannot_verify_level(ctx: PolicyContext) -> str:
    """Fail closed: what cannot be verified blocks staging, prod and unknown environments; dev and local are told."""
    return "advisory" if ctx.environment in ("dev", "local") else "mandatory"


def evaluate(records: Iterable[Resource], ctx: PolicyContext, rules: Iterable[Rule] = RULES) -> AuditResult:
    graph = records if isinstance(records, StackGraph) else StackGraph(records)
    result = AuditResult(stack=ctx.stack, context=ctx, resources=sum(1 for r in graph.records if r.custom))
    used: set[Suppression] = set()
    stack_record = graph.stack
    for rule in rules:
        level = ctx.enforcement_for(rule.id, rule.severity, rule.pinned)
        if level == "disabled":
            result.not_evaluated[rule.id] = "disabled by the stack's policy.enforcement"
            continue
        applies, why_not = rule.applies_in(ctx)
        if not applies:
            result.not_evaluated[rule.id] = why_not
            continue
        result.rules_run.append(rule.id)
        findings = [(r, m, rule.severity, level, "violation") for r, m in run_rule(rule, graph, ctx)]
        findings += [
            (r, m, CANNOT_VERIFY, cannot_verify_level(ctx), CANNOT_VERIFY) for r, m in cannot_verify(rule, graph)
        ]
        for resource, message, severity, enforcement, verdict in findings:
            target = resource or stack_record
            violation = Violation(
                rule.id,
                severity,
                enforcement,
                target.urn if target else "",
                target.type if target else "",
                target.name if target else "",
                message,
                verdict=verdict,
            )
            suppression = _matching_suppression(ctx, rule.id, target)
            if suppression is not None and not suppression.expired(ctx.today):
                used.add(suppression)
                result.suppressed.append(Violation(**{**violation.__dict__, "suppression": suppression}))
            else:
                result.violations.append(violation)
    for s in ctx.suppressions:
        if s.expired(ctx.today):
            result.expired_suppressions.append(s)
        elif s not in used:
            result.unused_suppressions.append(s)
    return result


def _matching_suppression(ctx: PolicyContext, rule_id: str, resource: Resource | None) -> Suppression | None:
    if resource is None:
        return None
    physical = str(resource.props.get("name") or resource.props.get("bucket") or resource.id or "")
    for s in ctx.suppressions:
        if s.matches(rule_id, resource.urn, resource.name, physical):
            return s
    return None
