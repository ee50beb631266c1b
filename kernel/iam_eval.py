"""An IAM policy evaluator for one account: does this role's policy allow this request?

AWS evaluates a request against the caller's identity policies and, when the role carries
one, its permissions boundary: an explicit Deny anywhere wins; otherwise the identity policies
must Allow it and the boundary must Allow it too. Moto enforces no IAM by default and has no
policy simulation, so our proofs evaluate policies here. Supported: Allow/Deny,
Action/NotAction, Resource/NotResource with `*` and `?` wildcards, and the condition operators
String*, Arn*, Bool, Null, Numeric* with the ForAllValues:/ForAnyValue: set prefixes and the
IfExists suffix. A condition key missing from the request makes a positive operator false, a
negated one (StringNotEquals, ArnNotLike...) true, ForAllValues: true and ForAnyValue: false.

Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
and https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One authorisation request: an action on a resource ARN (or `*`) with its context keys."""

    action: str
    resource: str = "*"
    context: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.action, self.resource, json.dumps(self.context, sort_keys=True, default=str)))


def statements(policy: dict[str, Any] | str) -> list[dict[str, Any]]:
    """A policy document's statements as a list (a single statement may be written bare)."""
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = doc.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def decide(request: Request, policies: list[dict[str, Any] | str]) -> str:
    """The decision of one set of policies alone: ExplicitDeny, Allow or ImplicitDeny."""
    allowed = False
    for policy in policies:
        for statement in statements(policy):
            if not _applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return DENY
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def evaluate(
    request: Request, identity: list[dict[str, Any] | str], boundary: list[dict[str, Any] | str] | None = None
) -> str:
    """The decision for a role with these identity policies and, optionally, a permissions boundary."""
    own = decide(request, identity)
    if boundary is None or own == DENY:
        return own
    bounded = decide(request, boundary)
    if bounded == DENY:
        return DENY
    return ALLOW if own == ALLOW and bounded == ALLOW else IMPLICIT_DENY


def is_allowed(
    request: Request, identity: list[dict[str, Any] | str], boundary: list[dict[str, Any] | str] | None = None
) -> bool:
    return evaluate(request, identity, boundary) == ALLOW


def matching_statements(request: Request, policies: list[dict[str, Any] | str]) -> list[dict[str, Any]]:
    """The statements that apply to a request (to say which one allows or denies it)."""
    return [s for p in policies for s in statements(p) if _applies(s, request)]


# --- matching -------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(glob: str, value: str, ignore_case: bool = False) -> bool:
    return bool(_pattern(glob, ignore_case).match(value))


def _applies(statement: dict[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(glob_match(a, request.action, True) for a in _as_list(statement["Action"])):
            return False
    elif any(glob_match(a, request.action, True) for a in _as_list(statement.get("NotAction"))):
        return False
    if "Resource" in statement:
        if not any(_resource_match(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif any(_resource_match(r, request.resource) for r in _as_list(statement.get("NotResource"))):
        return False
    return all(
        condition_holds(operator, key, expected, request.context)
        for operator, block in (statement.get("Condition") or {}).items()
        for key, expected in block.items()
    )


def _resource_match(pattern: str, resource: str) -> bool:
    # A request on no particular resource ("*") matches only a statement on every resource.
    if resource == "*":
        return pattern == "*"
    return glob_match(pattern, resource)


# --- conditions -----------------------------------------------------------------------------

_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _lookup(context: dict[str, Any], key: str) -> tuple[bool, list[Any]]:
    for name, value in context.items():
        if name.lower() == key.lower():  # condition key names are case-insensitive
            return True, _as_list(value)
    return False, []


def _match_one(base: str, expected_value: Any, actual_value: Any) -> bool:
    actual, expected = str(actual_value), str(expected_value)
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        return actual == expected if base.startswith("String") else glob_match(expected, actual)
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == expected.lower()
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return glob_match(expected, actual)
    if base == "Bool":
        return actual.lower() == expected.lower()
    if base.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {
            "NumericEquals": a == e,
            "NumericNotEquals": a != e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[base]
    raise ValueError(f"condition operator {base!r} is not supported by kernel.iam_eval")


def condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    """One condition key under one operator, against the request context."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present, actual = _lookup(context, key)
    wanted = [str(v) for v in _as_list(expected)]
    if base == "Null":
        return any((v.lower() == "true") == (not present) for v in wanted)
    negated = base in _NEGATED
    positive = base.replace("Not", "", 1) if negated else base

    def matches(value: Any) -> bool:
        hit = any(_match_one(positive, w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":  # every value in the request must match; none at all: vacuously true
        return all(matches(a) for a in actual)
    if qualifier == "ForAnyValue":  # at least one value must match; none at all: false
        return any(matches(a) for a in actual)
    if not present:
        return if_exists or negated
    hit = any(_match_one(positive, w, a) for w in wanted for a in actual)
    return not hit if negated else hit
