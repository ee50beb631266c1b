"""The offline auditor: run the rules over a stack's preview, every stack, or an exported state file.

This is the one module of `policies` that reaches into `infra` (for the offline preview and the
typed stack config), and only lazily, inside the functions that need it: the rules themselves see
resource records and a `PolicyContext`, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from policies.context import PolicyContext, infer_context
from policies.engine import AuditResult, Violation, evaluate
from policies.records import Resource, from_preview_graph, load_state


class AuditError(ValueError):
    """A user error: unknown stack, invalid config, unreadable state file."""


# A state file is read whole into memory and every resource turned into a record: bound it.
# Real exports of stacks this size are well under a megabyte; the cap leaves room for big ones.
MAX_STATE_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class AuditTarget:
    """What to audit: the records, the context to judge them by, and where they came from."""

    name: str
    records: list[Resource]
    context: PolicyContext
    source: str  # "preview" | "state"
    location: str  # the stack file or state file, for SARIF and messages


def stack_names() -> list[str]:
    """Every stack with a `stacks/Pulumi.<name>.yaml`."""
    from kernel.paths import known_stacks

    return known_stacks()


def stack_context(
    stack: str, config_overrides: dict[str, Any] | None = None, today: date | None = None
) -> PolicyContext:
    from kernel.stack_config import ConfigError, load_stack_config

    try:
        return PolicyContext.from_stack_config(load_stack_config(stack, config_overrides), today=today)
    except ConfigError as err:
        raise AuditError(str(err)) from None


def target_from_stack(
    stack: str, config_overrides: dict[str, Any] | None = None, today: date | None = None
) -> AuditTarget:
    """The offline preview of a stack (infra.preview), judged by its own config."""
    from infra.preview import preview_stack
    from kernel.paths import stack_path
    from kernel.stack_config import ConfigError

    try:
        preview = preview_stack(stack, config_overrides=config_overrides)
    except ConfigError as err:
        raise AuditError(str(err)) from None
    context = (
        PolicyContext.from_stack_config(preview.config, today=today)
        if preview.config is not None
        else stack_context(stack, config_overrides, today)
    )
    path = stack_path(stack)
    return AuditTarget(
        preview.stack, from_preview_graph(preview.resources, preview.outputs), context, "preview", _relative(path)
    )


def target_from_state(path: str | Path, stack: str | None = None, today: date | None = None) -> AuditTarget:
    """A `pulumi stack export` file, judged by `stack`'s config when given, else by what it shows."""
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise AuditError(f"{path}: no such file") from None
    except OSError as err:
        raise AuditError(f"{path}: cannot read: {err.strerror or err}") from None
    if size > MAX_STATE_FILE_BYTES:
        raise AuditError(f"{path} is {size} bytes; a state file may hold at most {MAX_STATE_FILE_BYTES}; refused")
    try:
        state = load_state(path)
    except ValueError as err:
        raise AuditError(str(err)) from None
    except (TypeError, AttributeError, KeyError, IndexError) as err:  # a resource of the wrong shape
        raise AuditError(f"{path}: malformed `pulumi stack export` document ({type(err).__name__}: {err})") from None
    except RecursionError:
        raise AuditError(f"{path}: JSON nested too deeply to be a state file") from None
    for index, record in enumerate(state.resources):
        problem = _malformed(record)
        if problem:
            raise AuditError(f"{path}: deployment.resources[{index}] {problem}; expected `pulumi stack export` output")
    if stack:
        context = stack_context(stack, today=today).with_notes(
            f"state of '{state.stack or '?'}' judged against stack config '{stack}'"
        )
    else:
        context = infer_context(state.resources, state.stack, today=today)
    return AuditTarget(state.stack or Path(path).stem, state.resources, context, "state", str(path))


_URN = "urn:pulumi:"


def _malformed(record: Resource) -> str:
    """Why a state record cannot be judged (a rule would see garbage and pass it), or ''."""
    if not record.urn.startswith(_URN):
        return f"has urn {record.urn!r}, not a Pulumi URN"
    if record.type.count(":") < 2:
        return f"has type {record.type!r}, not a Pulumi type token (package:module:Type)"
    if record.parent and not record.parent.startswith(_URN):
        return f"has parent {record.parent!r}, not a Pulumi URN"
    if record.provider and not record.provider.startswith(_URN):
        return f"has provider {record.provider!r}, not a provider reference (urn::id)"
    if not all(isinstance(d, str) and d.startswith(_URN) for d in record.dependencies):
        return "has dependencies that are not a list of Pulumi URNs"
    return ""


def audit(target: AuditTarget) -> AuditResult:
    return evaluate(target.records, target.context)


def preflight(target: AuditTarget) -> list[str]:
    """What AWS itself would refuse in the audited resources (infra.preflight).

    Not a policy verdict: no enforcement level or suppression can make AWS accept a request it
    refuses, so `mlops audit` reports these apart from the rules and fails on any of them.
    """
    from infra.preflight import check_resources

    # What the program declared: keys only read back from a state file's outputs are AWS's answer, not a request.
    records = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "props": {k: v for k, v in r.props.items() if k not in r.observed_only},
        }
        for r in target.records
    ]
    return [finding.message for finding in check_resources(records)]


def audit_all(
    today: date | None = None, progress: Callable[[str], None] | None = None
) -> list[tuple[AuditTarget, AuditResult]]:
    results = []
    for name in stack_names():
        if progress:
            progress(f"previewing and auditing stack {name}")
        target = target_from_stack(name, today=today)
        results.append((target, audit(target)))
    return results


# --- output ------------------------------------------------------------------------------


def format_table(target: AuditTarget, result: AuditResult) -> str:
    """Violations grouped by resource, then suppressions, skipped rules and notes."""
    s = result.summary()
    lines = [
        f"stack {target.name} ({target.source}: {target.location}; environment "
        f"{result.context.environment or 'unknown'}): {s['resources']} resources, {s['rulesEvaluated']} rules, "
        f"{s['violations']} violation(s): {s['mandatory']} mandatory, {s['advisory']} advisory"
    ]
    by_resource: dict[tuple[str, str, str], list[Violation]] = {}
    for v in result.violations:
        by_resource.setdefault((v.name, v.type, v.urn), []).append(v)
    for (name, type_, _urn), violations in sorted(by_resource.items()):
        lines.append("")
        lines.append(f"  {name}  {type_}")
        for v in sorted(violations, key=lambda v: (v.enforcement != "mandatory", v.rule)):
            lines.append(f"    [{v.enforcement}/{v.severity}] {v.rule}")
            lines.append(f"        {_strip_label(v.message, name)}")
    if result.suppressed:
        lines += ["", f"  suppressed ({len(result.suppressed)}):"]
        for v in result.suppressed:
            sup = v.suppression
            assert sup is not None  # a suppressed violation carries its suppression
            lines.append(f"    {v.rule} on {v.name} until {sup.expires.isoformat()}: {sup.reason}")
    for label, items in (
        ("expired suppressions (no longer applied)", result.expired_suppressions),
        ("unused suppressions (nothing to suppress)", result.unused_suppressions),
    ):
        if items:
            lines += ["", f"  {label}:"]
            lines += [f"    {x.rule} on {x.resource} (expires {x.expires.isoformat()}): {x.reason}" for x in items]
    if result.not_evaluated:
        lines += ["", "  not evaluated:"]
        lines += [f"    {rule}: {why}" for rule, why in sorted(result.not_evaluated.items())]
    for note in result.context.notes:
        lines.append(f"  note: {note}")
    lines += ["", f"  result: {'FAIL' if result.exit_code else 'PASS'} ({s['mandatory']} mandatory violation(s))"]
    return "\n".join(lines)


def _strip_label(message: str, name: str) -> str:
    """The table already names the resource; drop the message's leading 'name (type): '."""
    head, sep, rest = message.partition("): ")
    return rest if sep and head.startswith(name) else message


def combined_json(results: list[tuple[AuditTarget, AuditResult]]) -> dict[str, Any]:
    """One JSON document for one or many stacks: violations carry their stack; the summary adds up."""
    violations, suppressed, per_stack = [], [], {}
    for target, result in results:
        violations += [{"stack": target.name, **v.to_json()} for v in result.violations]
        suppressed += [{"stack": target.name, **v.to_json()} for v in result.suppressed]
        per_stack[target.name] = {"source": target.source, "location": target.location, **result.summary()}
    mandatory = sum(s["mandatory"] for s in per_stack.values())
    return {
        "violations": violations,
        "suppressed": suppressed,
        "summary": {
            "stacks": per_stack,
            "violations": len(violations),
            "mandatory": mandatory,
            "advisory": len(violations) - mandatory,
            "suppressed": len(suppressed),
            "passed": mandatory == 0,
        },
    }


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
