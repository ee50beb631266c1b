"""Validate a request against AWS's own API model, as botocore ships it.

Pulumi's mocks and moto accept nearly any value; AWS refuses a request whose members break the
service model (required members, lengths, patterns, enums, ranges, list and map sizes, unknown
members). Those limits are not copied here: they are read at run time from botocore's service
models through botocore's own loader (`botocore.loaders`), so a newer botocore brings AWS's newer
limits.

botocore's `pattern` traits are Java regular expressions. Most compile with Python's `re` and are
applied as a full match; a pattern Python cannot compile is skipped and counted in
`skipped_patterns()`, never guessed at.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any


class _Unknown:
    """A value that exists but is not known yet (a Pulumi Output at preview time, an output a state
    file leaves unresolved): checked by nothing, never guessed. One definition, read by the
    preflight and by the policy records."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # present, so truthy: "is it set?" is answered yes
        return True


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Problem:
    """One member of a request that AWS would refuse."""

    path: str  # e.g. ProductionVariants[0].InstanceType
    value: Any
    constraint: str  # e.g. "length 1-63", "one of: ..."
    source: str  # e.g. "botocore sagemaker CreateEndpointConfig"

    @property
    def message(self) -> str:
        if self.value is None:
            return f"{self.path}: missing; {self.constraint} (source: {self.source})"
        return f"{self.path}: {_show(self.value)} is not valid; {self.constraint} (source: {self.source})"

    def __str__(self) -> str:
        return self.message


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --- loading (cached) ------------------------------------------------------------------------


@functools.cache
def _loader() -> Any:
    # botocore's own loader, imported on first use: the kernel stays light for those who never validate.
    # (A full botocore session would also load endpoints and partitions: slower, and nothing we need.)
    from botocore.loaders import create_loader

    return create_loader()


@functools.cache
def service_model(service: str) -> Any:
    """botocore's ServiceModel for `service` (sagemaker, s3, iam...), loaded once per process."""
    from botocore.model import ServiceModel

    return ServiceModel(_loader().load_service_model(service, "service-2"), service_name=service)


@functools.cache
def operation_model(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation)


_SKIPPED_PATTERNS: set[str] = set()


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError):
        _SKIPPED_PATTERNS.add(pattern)
        return None


def skipped_patterns() -> frozenset[str]:
    """botocore patterns met so far that Python's `re` could not compile (so were not checked)."""
    return frozenset(_SKIPPED_PATTERNS)


def source_of(service: str, operation: str) -> str:
    return f"botocore {service} {operation}"


# --- validation ------------------------------------------------------------------------------


def validate_request(service: str, operation: str, params: dict[str, Any], *, partial: bool = False) -> list[Problem]:
    """Every problem AWS's model finds in `params` for `service` `operation` (empty when valid).

    `partial=True` skips the required-member checks, for requests assembled from a preview where
    some members are only known after deployment. Values equal to `UNKNOWN` are never checked.
    """
    op = operation_model(service, operation)
    problems: list[Problem] = []
    _walk(op.input_shape, params, "", source_of(service, operation), problems, partial)
    return problems


def validate_member(service: str, operation: str, path: str, value: Any) -> list[Problem]:
    """Check one member of a request on its own, e.g. ("iam", "CreateRole", "RoleName", name).

    `path` is dotted through structures ("Budget.BudgetName"). Used to check names derived from a
    stack before any request is assembled.
    """
    shape = operation_model(service, operation).input_shape
    for part in path.split("."):
        members = getattr(shape, "members", {})
        if part not in members:
            raise KeyError(f"{service} {operation} has no member {path!r}")
        shape = members[part]
    problems: list[Problem] = []
    _walk(shape, value, path, source_of(service, operation), problems, partial=False)
    return problems


def member_limits(service: str, operation: str, path: str) -> dict[str, Any]:
    """The model's traits (min, max, pattern, enum) of one member, for messages and config bounds.

    `path` is dotted; `[]` steps into a list's items: "ProductionVariants[].ServerlessConfig.MaxConcurrency".
    """
    shape = operation_model(service, operation).input_shape
    for part in path.split("."):
        shape = shape.members[part.removesuffix("[]")]
        if part.endswith("[]"):
            shape = shape.member
    return dict(shape.metadata)


# The kinds whose value has a size the model bounds: the Python types that carry them, the word for
# one, and what the size counts.
SIZED: dict[str, tuple[tuple[type[Sized], ...], str, str]] = {
    "list": ((list, tuple), "a list", "items"),
    "map": ((dict,), "a map", "entries"),
    "string": ((str,), "a string", "characters"),
}


def _walk(shape: Any, value: Any, path: str, source: str, out: list[Problem], partial: bool) -> None:
    if value is UNKNOWN or value is None:
        return
    kind = shape.type_name
    meta = shape.metadata
    where = path or "(request)"
    if kind in SIZED:
        types, expected, unit = SIZED[kind]
        if not isinstance(value, types):
            out.append(Problem(where, value, f"expected {expected}", source))
            return
        _size(meta, len(value), value, where, unit, source, out)
    if kind == "structure":
        if not isinstance(value, dict):
            out.append(Problem(where, value, "expected a structure (mapping)", source))
            return
        members = shape.members
        for name in sorted(set(value) - set(members)):
            out.append(Problem(_join(path, name), value[name], f"unknown member of {shape.name}", source))
        if not partial:
            for name in shape.required_members:
                if value.get(name) is None:
                    out.append(Problem(_join(path, name), None, "required member missing", source))
        for name, member in members.items():
            if name in value:
                _walk(member, value[name], _join(path, name), source, out, partial)
    elif kind == "list":
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", source, out, partial)
    elif kind == "map":
        for key, item in value.items():
            _walk(shape.key, key, f"{path}.<key {key}>", source, out, partial)
            _walk(shape.value, item, f"{path}[{key!r}]", source, out, partial)
    elif kind == "string":
        enum = meta.get("enum")
        if enum and value not in enum:
            shown = ", ".join(enum[:12]) + (f", ... ({len(enum)} values in all)" if len(enum) > 12 else "")
            out.append(Problem(where, value, f"one of: {shown}", source))
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            if compiled is not None and not compiled.fullmatch(value):
                out.append(Problem(where, value, f"must match pattern {pattern}", source))
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value != int(value):
            out.append(Problem(where, value, "expected a whole number", source))
            return
        _range(meta, value, where, source, out)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            out.append(Problem(where, value, "expected a finite number", source))
            return
        _range(meta, value, where, source, out)
    elif kind == "boolean" and not isinstance(value, bool):
        out.append(Problem(where, value, "expected true or false", source))
    # timestamp, blob, document: no value constraints the preflight can check offline


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _finite(value: float) -> bool:
    return not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def _size(meta: dict[str, Any], size: int, value: Any, where: str, unit: str, source: str, out: list[Problem]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        bounds = f"{low if low is not None else 0}-{high}" if high is not None else f"at least {low}"
        out.append(Problem(where, value, f"{bounds} {unit} (has {size})", source))


def _range(meta: dict[str, Any], value: float, where: str, source: str, out: list[Problem]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bounds = f"at least {low}"
        elif low is None:
            bounds = f"at most {high}"
        else:
            bounds = f"between {low} and {high}"
        out.append(Problem(where, value, f"expected {bounds}", source))
