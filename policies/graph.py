"""An index over a stack's resource records, for rules that join resources.

In pulumi-aws v7 a bucket's versioning, encryption, logging... are separate resources; an
endpoint's alarms, autoscaling and config are others. `StackGraph` answers "which X belongs to
this Y" the same way for every source: by the reference property (bucket name, config name),
and, where the engine cannot know it yet (CrossGuard preview), by declared dependencies.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from kernel.aws_model import UNKNOWN
from policies.records import STACK_TYPE, Resource


class StackGraph:
    def __init__(self, records: Iterable[Resource]):
        self.records: list[Resource] = list(records)
        self.by_urn: dict[str, Resource] = {r.urn: r for r in self.records}
        self._by_type: dict[str, list[Resource]] = {}
        for r in self.records:
            self._by_type.setdefault(r.canonical_type, []).append(r)

    def __len__(self) -> int:
        return len(self.records)

    def of_type(self, *types: str) -> list[Resource]:
        out: list[Resource] = []
        for t in types:
            out.extend(self._by_type.get(t, ()))
        return out

    @cached_property
    def stack(self) -> Resource | None:
        stacks = self._by_type.get(STACK_TYPE, [])
        return stacks[0] if stacks else None

    @cached_property
    def account_id(self) -> str | None:
        """The stack's AWS account: its `accountId` output, else the account most of its ARNs name."""
        declared = self.outputs.get("accountId")
        if isinstance(declared, str) and ACCOUNT_ID.fullmatch(declared):
            return declared
        seen = Counter(
            account for r in self.records if r.custom and (account := arn_account(r.props.get("arn"))) is not None
        )
        return seen.most_common(1)[0][0] if seen else None

    @property
    def outputs(self) -> Mapping[str, Any]:
        """The stack's outputs (props of the `pulumi:pulumi:Stack` record); empty when unknown."""
        return self.stack.props if self.stack is not None else {}

    def provider_of(self, resource: Resource) -> Resource | None:
        """The provider record; state files reference it as `urn::id`."""
        ref = resource.provider
        if not ref:
            return None
        found = self.by_urn.get(ref)
        if found is None and "::" in ref:
            found = self.by_urn.get(ref.rsplit("::", 1)[0])
        return found

    # --- joins ----------------------------------------------------------------------------

    def refers_to(self, resource: Resource, prop: str, target: Resource, *target_keys: str) -> bool:
        """Does `resource.props[prop]` name `target` (by id or one of its identifying props),
        or — when the reference is not known yet — does `resource` depend on `target`?"""
        ref = resource.props.get(prop)
        if ref is None:
            return False
        if ref is UNKNOWN:
            return target.urn in resource.dependencies
        identifiers = {target.id, target.urn, target.name if not target.custom else ""}
        identifiers |= {str(target.props.get(k)) for k in target_keys if isinstance(target.props.get(k), str)}
        identifiers.discard("")
        return str(ref) in identifiers

    def attached(self, target: Resource, types: tuple[str, ...], prop: str, *target_keys: str) -> list[Resource]:
        """Every resource of `types` whose `prop` refers to `target`."""
        return [r for r in self.of_type(*types) if self.refers_to(r, prop, target, *target_keys)]


ACCOUNT_ID = re.compile(r"\d{12}")


def arn_account(arn: Any) -> str | None:
    """The account field of an ARN (`arn:aws:kms:us-east-1:123456789012:key/...`); None when it has none."""
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and ACCOUNT_ID.fullmatch(parts[4]) else None


def listify(value: Any) -> list[Any]:
    """Older providers hold single blocks as one-element lists (`versionings: [{...}]`); v7 as objects."""
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list):
        return value
    return [value]


def first(mapping: Mapping[str, Any] | Any, *keys: str) -> Any:
    """The first present key among `keys` (singular/plural spellings across provider versions)."""
    if not isinstance(mapping, Mapping):
        return None
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def truthy(value: Any) -> bool:
    """A declared boolean, tolerating the strings older state files hold ("true", "Enabled")."""
    if value is UNKNOWN:
        return True
    if isinstance(value, str):
        return value.strip().lower() in ("true", "enabled", "yes", "1")
    return bool(value)


def number(value: Any) -> float | None:
    if value is None or value is UNKNOWN or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
