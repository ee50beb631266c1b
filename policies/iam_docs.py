"""Reading IAM-style policy documents (identity policies, trust policies, bucket/key/topic policies).

Documents arrive as JSON strings in props (`policy`, `assumeRolePolicy`, `resourcePolicy`), as
dicts, or as `UNKNOWN` during a CrossGuard preview. `parse` returns `None` for what cannot be
read, so rules stay silent instead of guessing.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kernel.aws_model import UNKNOWN

# Condition keys that bind a wildcard principal to this account, organisation, network or source.
SCOPING_CONDITION_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceIp",
        "kms:CallerAccount",
        "kms:ViaService",
        "aws:ResourceAccount",
        "aws:userid",
    )
)
# Conditions that restrict how, not who or what: they do not scope a grant.
WEAK_CONDITION_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SecureTransport",
        "aws:RequestedRegion",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:MultiFactorAuthPresent",
        "aws:MultiFactorAuthAge",
        "aws:ViaAWSService",
        "aws:CalledVia",
    )
)
# Verbs of actions that only read. Anything else is treated as a write.
READ_VERBS = (
    "Get",
    "List",
    "Describe",
    "Head",
    "BatchGet",
    "Search",
    "Lookup",
    "View",
    "Select",
    "Query",
    "Scan",
    "Check",
    "Validate",
    "Simulate",
    "Preview",
    "Estimate",
    "Test",
    "Retrieve",
    "Download",
)
# Actions AWS authorises only against Resource "*" (no resource-level permissions), or whose
# resource is created by the call itself: granting them on "*" is the only way.
RESOURCE_STAR_ONLY = frozenset(
    a.lower()
    for a in (
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "sts:GetCallerIdentity",
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:CreateVpcEndpoint",
        "logs:PutResourcePolicy",
        "sagemaker:Search",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    )
)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    principals: Mapping[str, tuple[str, ...]]  # {"AWS": (...), "Service": (...), "Federated": (...), "*": ("*",)}
    not_principal: bool
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]  # {operator: {key: value(s)}}

    @property
    def allows(self) -> bool:
        return self.effect.lower() == "allow"

    @property
    def label(self) -> str:
        return f"statement '{self.sid}'" if self.sid else "a statement"

    @property
    def condition_keys(self) -> set[str]:
        return {k.lower() for block in self.conditions.values() if isinstance(block, Mapping) for k in block}

    def condition_values(self, key: str, operators: tuple[str, ...] | None = None) -> list[str]:
        """Every value compared with `key` (case-insensitive), across operators (or only these)."""
        out: list[str] = []
        for operator, block in self.conditions.items():
            if not isinstance(block, Mapping) or (operators is not None and operator not in operators):
                continue
            for k, v in block.items():
                if k.lower() == key.lower():
                    out.extend(str(x) for x in (v if isinstance(v, list) else [v]))
        return out

    def restricting_keys(self) -> set[str]:
        """Condition keys (lower-case) whose test really narrows who may call: not a wildcard value,
        `0.0.0.0/0`, a negation, `...IfExists`, `Null` or `ForAllValues:` (vacuous when the key is absent)."""
        out: set[str] = set()
        for operator, block in self.conditions.items():
            if not isinstance(block, Mapping):
                continue
            for key, value in block.items():
                values = [str(v) for v in (value if isinstance(value, list) else [value])]
                if restricts(str(operator), key, values):
                    out.add(key.lower())
        return out

    @property
    def is_scoped_by_condition(self) -> bool:
        """Does a condition really bind the statement to an account, source, network or organisation?

        A scoping key compared with a value that matches everyone (`aws:SourceIp 0.0.0.0/0`,
        `aws:PrincipalAccount *`) or through an operator that passes when the key is absent
        (`...IfExists`, `ForAllValues:`, `Null`) or that excludes only some callers (`StringNotEquals`)
        scopes nothing: such a statement is as public as one without a condition.
        """
        return bool(self.restricting_keys() & SCOPING_CONDITION_KEYS)

    @property
    def has_restricting_condition(self) -> bool:
        """Any condition beyond transport/region/time ones."""
        return bool(self.condition_keys - WEAK_CONDITION_KEYS)

    @property
    def wildcard_principal(self) -> bool:
        """`Principal: "*"` or `{"AWS": "*"}` — anyone, in any account."""
        if self.not_principal:
            return True
        return "*" in self.principals.get("*", ()) or "*" in self.principals.get("AWS", ())


# Keys whose values are account, organisation or network ids: any wildcard in them matches every
# account's (`o-*`, `vpce-*`), so it restricts nothing.
ACCOUNT_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceAccount",
        "aws:SourceOwner",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:ResourceAccount",
        "aws:SourceOrgID",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "kms:CallerAccount",
    )
)
EVERY_ADDRESS = ("0.0.0.0/0", "::/0")


def vacuous_value(key: str, value: str) -> bool:
    """Does this one condition value match (almost) every caller?"""
    value = value.strip()
    if not value.strip("*?") or value in EVERY_ADDRESS:
        return True
    if key.lower() in ACCOUNT_KEYS and any(c in value for c in "*?"):
        return True
    if value.startswith("arn:"):
        parts = value.split(":")
        return len(parts) > 4 and any(c in parts[4] for c in "*?")  # any account
    return False


def restricts(operator: str, key: str, values: list[str]) -> bool:
    """Does `operator: {key: values}` narrow the callers at all?"""
    op = operator.lower()
    if op.startswith("forallvalues:") or op.endswith("ifexists") or op == "null" or "not" in op:
        return False
    return bool(values) and not any(vacuous_value(key, v) for v in values)


def open_to_everyone(document: Any) -> list[Statement]:
    """The Allow statements of a resource policy that name Principal '*' with no condition scoping the caller."""
    return [s for s in parse(document) or [] if s.allows and s.wildcard_principal and not s.is_scoped_by_condition]


def parse(document: Any) -> list[Statement] | None:
    """Statements of a policy document; `None` when it is absent, unknown or not a policy."""
    if document is None or document is UNKNOWN or document == "":
        return None
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return None
    if not isinstance(document, Mapping):
        return None
    raw = document.get("Statement")
    if raw is None:
        return None
    raw_statements = raw if isinstance(raw, list) else [raw]
    return [_statement(s) for s in raw_statements if isinstance(s, Mapping)]


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not UNKNOWN)
    return () if value is UNKNOWN else (str(value),)


def _principals(value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"*": (value,)} if value == "*" else {"AWS": (value,)}
    if isinstance(value, Mapping):
        return {str(k): _as_tuple(v) for k, v in value.items()}
    return {}


def _statement(s: Mapping[str, Any]) -> Statement:
    not_principal = "NotPrincipal" in s
    return Statement(
        sid=str(s.get("Sid") or ""),
        effect=str(s.get("Effect") or ""),
        principals=_principals(s.get("NotPrincipal") if not_principal else s.get("Principal")),
        not_principal=not_principal,
        actions=_as_tuple(s.get("Action")),
        not_actions=_as_tuple(s.get("NotAction")),
        resources=_as_tuple(s.get("Resource")),
        not_resources=_as_tuple(s.get("NotResource")),
        conditions=dict(s.get("Condition") or {}) if isinstance(s.get("Condition"), Mapping) else {},
    )


# --- actions -------------------------------------------------------------------------------


def is_full_wildcard(action: str) -> bool:
    return action.strip() in ("*", "*:*")


def is_write(action: str) -> bool:
    """True unless the action's verb only reads. `s3:*` and `s3:Put*` are writes."""
    if is_full_wildcard(action):
        return True
    _, _, verb = action.partition(":")
    return not verb or not verb.startswith(READ_VERBS)


def needs_star(action: str) -> bool:
    action = action.lower()
    if action in RESOURCE_STAR_ONLY:
        return True
    return action.startswith("ec2:describe")


def action_matches(pattern: str, action: str) -> bool:
    """IAM's case-insensitive glob: does `pattern` (which may hold * and ?) grant `action`?"""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def grants(statement: Statement, action: str) -> bool:
    """Does an Allow statement grant `action` (through Action or NotAction)?"""
    if not statement.allows:
        return False
    if statement.not_actions:
        return not any(action_matches(p, action) for p in statement.not_actions)
    return any(action_matches(p, action) for p in statement.actions)


def statements_of(props: Mapping[str, Any], *keys: str) -> Iterable[tuple[str, list[Statement]]]:
    """(key, statements) for every readable policy document under `keys`."""
    for key in keys:
        statements = parse(props.get(key))
        if statements is not None:
            yield key, statements
