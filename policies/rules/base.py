"""The shape of a rule: an id, a one-line description, a severity, and a pure check function.

Resource rules look at one resource (plus, read-only, the graph it sits in: its provider's
default tags, a bucket's log target); stack rules look at the whole graph. Neither does I/O.
Adapters (`policies.engine` for the auditor, `policies.crossguard` for the Pulumi policy pack)
turn the same `Rule` objects into verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from policies.context import PolicyContext
from policies.graph import StackGraph
from policies.records import Resource

SEVERITIES = ("low", "medium", "high", "critical")
FAMILIES = ("s3", "kms", "iam", "sagemaker", "ecr", "monitoring", "cost", "tags", "network")

ResourceCheck = Callable[[Resource, PolicyContext, StackGraph], Iterable[str]]
StackCheck = Callable[[StackGraph, PolicyContext], Iterable[tuple["Resource | None", str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str  # one line: what must hold
    severity: str
    family: str
    scope: str  # "resource" | "stack"
    check: Callable
    why: str  # the risk, for docs/policies.md
    fix: str  # how to fix, in Pulumi Python terms
    types: tuple[str, ...] = ()  # resource rules: canonical type tokens they look at
    environments: tuple[str, ...] | None = None  # None: every environment
    needs: tuple[str, ...] = ()  # PolicyContext fields that must be known
    pinned: str | None = None  # an enforcement level the rule keeps unless a stack overrides it by id
    awsguard: str = ""  # the closest AWSGuard policy, for the comparison table
    # (type token, prop) pairs the rule cannot judge when the prop is an unreadable secret: there the
    # engine reports "cannot verify" instead of letting the rule pass on what it could not see.
    blind_spots: tuple[tuple[str, str], ...] = ()

    def applies_in(self, ctx: PolicyContext) -> tuple[bool, str]:
        """(applies, reason when it does not) for this stack's context."""
        for need in self.needs:
            value = getattr(ctx, need)
            if value is None or value == ():
                return False, f"needs {need.replace('_', ' ')}, which is unknown for this stack"
        if self.environments is not None:
            if ctx.environment is None:
                return False, f"applies only in {', '.join(self.environments)}; environment unknown"
            if ctx.environment not in self.environments:
                return False, f"applies only in {', '.join(self.environments)}"
        return True, ""


RULES: list[Rule] = []


def _register(rule: Rule) -> Rule:
    if rule.severity not in SEVERITIES:
        raise ValueError(f"rule {rule.id}: severity {rule.severity!r} not in {SEVERITIES}")
    if rule.family not in FAMILIES:
        raise ValueError(f"rule {rule.id}: family {rule.family!r} not in {FAMILIES}")
    if any(r.id == rule.id for r in RULES):
        raise ValueError(f"duplicate rule id {rule.id}")
    RULES.append(rule)
    return rule


def resource_rule(
    id: str,
    description: str,
    *,
    severity: str,
    family: str,
    types: tuple[str, ...],
    why: str,
    fix: str,
    environments: tuple[str, ...] | None = None,
    needs: tuple[str, ...] = (),
    pinned: str | None = None,
    awsguard: str = "",
    blind_spots: tuple[str, ...] = (),
) -> Callable[[ResourceCheck], Rule]:
    """`blind_spots` names props of the rule's own `types` (see `Rule.blind_spots`)."""

    def wrap(fn: ResourceCheck) -> Rule:
        return _register(
            Rule(
                id,
                description,
                severity,
                family,
                "resource",
                fn,
                why,
                fix,
                types,
                environments,
                needs,
                pinned,
                awsguard,
                tuple((t, key) for t in types for key in blind_spots),
            )
        )

    return wrap


def stack_rule(
    id: str,
    description: str,
    *,
    severity: str,
    family: str,
    why: str,
    fix: str,
    environments: tuple[str, ...] | None = None,
    needs: tuple[str, ...] = (),
    pinned: str | None = None,
    awsguard: str = "",
    blind_spots: tuple[tuple[str, str], ...] = (),
) -> Callable[[StackCheck], Rule]:
    def wrap(fn: StackCheck) -> Rule:
        return _register(
            Rule(
                id,
                description,
                severity,
                family,
                "stack",
                fn,
                why,
                fix,
                (),
                environments,
                needs,
                pinned,
                awsguard,
                blind_spots,
            )
        )

    return wrap


def say(resource: Resource, problem: str, fix: str) -> str:
    """The one message format: which resource, what is wrong, how to fix it."""
    return f"{resource.label}: {problem}. Fix: {fix}"


@dataclass
class Collected:
    """Helper for stack rules that accumulate (resource, message) pairs."""

    items: list[tuple[Resource | None, str]] = field(default_factory=list)

    def add(self, resource: Resource | None, message: str) -> None:
        self.items.append((resource, message))
