"""The shape of a rule: an id, a severity, and a pure check function whose docstring says what must
hold, why, and how to fix it. A family module declares its rules with `RuleFamily` (`@S3.stack(...)`).

Resource rules look at one resource (plus, read-only, the graph it sits in: its provider's
default tags, a bucket's log target); stack rules look at the whole graph. Neither does I/O.
Adapters (`policies.engine` for the auditor, `policies.crossguard` for the Pulumi policy pack)
turn the same `Rule` objects into verdicts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, NotRequired, TypedDict, TypeVar, Unpack

from policies.context import PolicyContext
from policies.graph import StackGraph
from policies.records import Resource

SEVERITIES = ("low", "medium", "high", "critical")
FAMILIES = ("s3", "kms", "iam", "sagemaker", "ecr", "monitoring", "cost", "tags", "network")

Finding = tuple[Resource | None, str]  # a stack rule's finding: the resource (None: the stack) and the message
ResourceCheck = Callable[[Resource, PolicyContext, StackGraph], Iterable[str]]
StackCheck = Callable[[StackGraph, PolicyContext], Iterable[Finding]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """What every rule declares; `ResourceRule` and `StackRule` add the check of their scope."""

    scope: ClassVar[str]  # "resource" | "stack"
    id: str
    description: str  # one line: what must hold
    severity: str
    family: str
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


@dataclass(frozen=True, kw_only=True)
class ResourceRule(Rule):
    """A rule that judges one resource of its `types` at a time."""

    scope: ClassVar[str] = "resource"
    check: ResourceCheck


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    """A rule that judges the whole graph and names the resource of each finding (None: the stack)."""

    scope: ClassVar[str] = "stack"
    check: StackCheck


RULES: list[Rule] = []
RuleT = TypeVar("RuleT", bound=Rule)


def _register(rule: RuleT) -> RuleT:
    if rule.severity not in SEVERITIES:
        raise ValueError(f"rule {rule.id}: severity {rule.severity!r} not in {SEVERITIES}")
    if rule.family not in FAMILIES:
        raise ValueError(f"rule {rule.id}: family {rule.family!r} not in {FAMILIES}")
    if any(r.id == rule.id for r in RULES):
        raise ValueError(f"duplicate rule id {rule.id}")
    RULES.append(rule)
    return rule


class Declared(TypedDict):
    """What a rule's decorator declares besides its id, types and blind spots."""

    severity: str
    environments: NotRequired[tuple[str, ...] | None]
    needs: NotRequired[tuple[str, ...]]
    pinned: NotRequired[str | None]
    awsguard: NotRequired[str]


class Texts(TypedDict):
    description: str
    why: str
    fix: str


def texts_of(check: Callable[..., object]) -> Texts:
    """A rule's texts, from its check's docstring: a first line saying what must hold, then a paragraph
    `Why: ...` (the risk) and one `Fix: ...` (how, in Pulumi Python terms); wrapped lines are joined.

    The docstring is the one place a reader of the check finds why it exists (as click reads a command's
    help); `python -OO` strips docstrings, and then every rule fails to load here, loudly.
    """
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(check.__doc__ or "").split("\n\n")]
    match paragraphs:
        case [description, why, fix] if why.startswith("Why: ") and fix.startswith("Fix: "):
            return Texts(description=description, why=why.removeprefix("Why: "), fix=fix.removeprefix("Fix: "))
    raise ValueError(f"rule check {check.__name__}: its docstring must be three paragraphs: what, 'Why: ', 'Fix: '")


@dataclass(frozen=True)
class RuleFamily:
    """Declares one family's rules: `S3 = RuleFamily("s3")`, then `@S3.resource(...)` or `@S3.stack(...)`
    on a check whose docstring holds the rule's texts (`texts_of`)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in FAMILIES:
            raise ValueError(f"family {self.name!r} not in {FAMILIES}")

    def resource(
        self, id: str, *, types: tuple[str, ...], blind_spots: tuple[str, ...] = (), **declared: Unpack[Declared]
    ) -> Callable[[ResourceCheck], ResourceRule]:
        """`blind_spots` names props of the rule's own `types` (see `Rule.blind_spots`)."""

        def wrap(fn: ResourceCheck) -> ResourceRule:
            spots = tuple((t, key) for t in types for key in blind_spots)
            return _register(
                ResourceRule(
                    id=id, family=self.name, check=fn, types=types, blind_spots=spots, **texts_of(fn), **declared
                )
            )

        return wrap

    def stack(
        self, id: str, *, blind_spots: tuple[tuple[str, str], ...] = (), **declared: Unpack[Declared]
    ) -> Callable[[StackCheck], StackRule]:
        def wrap(fn: StackCheck) -> StackRule:
            return _register(
                StackRule(id=id, family=self.name, check=fn, blind_spots=blind_spots, **texts_of(fn), **declared)
            )

        return wrap


def say(resource: Resource, problem: str, fix: str) -> str:
    """The one message format: which resource, what is wrong, how to fix it."""
    return f"{resource.label}: {problem}. Fix: {fix}"


@dataclass
class Collected:
    """Helper for stack rules that accumulate (resource, message) pairs."""

    items: list[Finding] = field(default_factory=list)

    def add(self, resource: Resource | None, message: str) -> None:
        self.items.append((resource, message))

    def flag(self, resource: Resource, problem: str, fix: str) -> None:
        """Add a finding on `resource` in the one message format (`say`)."""
        self.add(resource, say(resource, problem, fix))
