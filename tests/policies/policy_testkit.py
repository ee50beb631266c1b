"""Helpers for the policy tests: cached stack previews, hand-built records, record mutations."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from policies.context import PolicyContext
from policies.engine import AuditResult, evaluate
from policies.records import STACK_TYPE, Resource, from_preview_graph

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "stack-exports"
TODAY = date(2026, 6, 1)
ACCOUNT = "123456789012"


def package_arn(stack: str, model: str = "churn", version: int = 3) -> str:
    return f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{model}-{stack}/{version}"


def deployed(stack: str, **extra: Any) -> dict[str, Any]:
    """Config overrides that deploy the stack's model (shipped stacks have no approved package)."""
    return {"mlops:approvedPackages": {"churn": package_arn(stack)}, **extra}


def shipped_with(stack: str, key: str, **changes: Any) -> dict[str, Any]:
    """`{key: the shipped stack's value, with changes}`: a config mutation that changes only what it names."""
    from kernel.stack_config import read_raw_config

    return {key: {**read_raw_config(stack)[1][key], **changes}}


def _freeze(overrides: dict[str, Any] | None) -> str:
    return json.dumps(overrides or {}, sort_keys=True)


@cache
def _preview(stack: str, frozen: str) -> tuple[list[Resource], PolicyContext]:
    from infra.preview import preview_stack
    from kernel.stack_config import load_stack_config

    overrides = json.loads(frozen) or None
    preview = preview_stack(stack, config_overrides=overrides)
    config = preview.config if preview.config is not None else load_stack_config(stack, overrides)
    return from_preview_graph(preview.resources, preview.outputs), PolicyContext.from_stack_config(config, today=TODAY)


def stack_records(stack: str, overrides: dict[str, Any] | None = None) -> tuple[list[Resource], PolicyContext]:
    """(records, context) of a stack's offline preview; cached, and safe to mutate (deep copies)."""
    records, ctx = _preview(stack, _freeze(overrides))
    return copy.deepcopy(records), ctx


def audit(records: list[Resource], ctx: PolicyContext) -> AuditResult:
    return evaluate(records, ctx)


def findings(result: AuditResult) -> set[tuple[str, str, str]]:
    return {(v.rule, v.urn, v.message) for v in result.violations}


# --- building records by hand ------------------------------------------------------------


def res(
    type_: str,
    name: str,
    props: dict[str, Any] | None = None,
    *,
    id: str = "",
    stack: str = "test",
    custom: bool = True,
    deps: tuple[str, ...] = (),
    provider: str = "",
    observed: frozenset[str] = frozenset(),
    source: str = "preview",
) -> Resource:
    urn = f"urn:pulumi:{stack}::mlops::{type_}::{name}"
    return Resource(
        urn=urn,
        type=type_,
        name=name,
        props=props or {},
        custom=custom,
        id=id or name,
        dependencies=deps,
        provider=provider,
        observed_only=observed,
        source=source,
    )


def stack_resource(outputs: dict[str, Any] | None = None, stack: str = "test") -> Resource:
    return res(STACK_TYPE, f"mlops-{stack}", outputs or {}, custom=False, id="", stack=stack)


def ctx(**fields: Any) -> PolicyContext:
    return replace(PolicyContext(stack="test", today=TODAY), **fields)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# --- mutating preview records ------------------------------------------------------------


def find(records: list[Resource], type_suffix: str, name: str) -> Resource:
    matches = [r for r in records if r.type.endswith(type_suffix) and r.name == name]
    assert len(matches) == 1, f"{len(matches)} records {type_suffix} {name}"
    return matches[0]


def edit(
    records: list[Resource], type_suffix: str, name: str, change: Callable[[dict[str, Any]], None]
) -> list[Resource]:
    """Records with one resource's props changed in place by `change` (on a deep copy)."""
    target = find(records, type_suffix, name)
    props = copy.deepcopy(dict(target.props))
    change(props)
    return [replace(r, props=props) if r is target else r for r in records]


def drop(records: list[Resource], type_suffix: str, name: str) -> list[Resource]:
    target = find(records, type_suffix, name)
    return [r for r in records if r is not target]


def edit_outputs(records: list[Resource], change: Callable[[dict[str, Any]], None]) -> list[Resource]:
    return edit(records, STACK_TYPE, next(r.name for r in records if r.type == STACK_TYPE), change)


def edit_policy(props: dict[str, Any], key: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Change the statements of a JSON policy document held in props[key]."""
    document = json.loads(props[key])
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    change(statements)
    document["Statement"] = statements
    props[key] = json.dumps(document)
