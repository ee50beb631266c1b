"""Read and edit `stacks/Pulumi.<env>.yaml` the way a person would: touch one key, keep the rest.

Promotion and rollback change two machine-managed keys, `mlops:approvedPackages` and
`mlops:previousPackages`. PyYAML would drop every comment on a round trip, so the edit is made
on the text: the block of the one key is re-rendered (flow or block style, as it was) and every
other byte of the file stays as it was. The result is parsed again and must equal the intended
configuration exactly, or nothing is written; the write itself is atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ci.errors import UsageError

APPROVED_KEY = "mlops:approvedPackages"
PREVIOUS_KEY = "mlops:previousPackages"


class StackFileError(UsageError):
    pass


def load_document(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise StackFileError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise StackFileError(f"{path} must be a mapping with a `config:` key")
    return doc


def read_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file (keys like `mlops:gate`, `aws:region`), as infra reads it."""
    from infra.config import read_raw_config

    return read_raw_config(Path(path))[1]


def approved_packages(path: Path) -> dict[str, str]:
    return {model: arn or "" for model, arn in (read_config(path).get(APPROVED_KEY) or {}).items()}


def previous_packages(path: Path) -> dict[str, list[str]]:
    return {k: list(v or []) for k, v in (read_config(path).get(PREVIOUS_KEY) or {}).items()}


def plan_promotion(path: Path, model: str, package_arn: str) -> dict[str, Any]:
    """The two keys' new values after deploying `package_arn` for `model` (the old one goes to history)."""
    approved = approved_packages(path)
    previous = previous_packages(path)
    old = approved.get(model, "")
    approved[model] = package_arn
    history = previous.get(model, [])
    if old and old != package_arn:
        history = history + [old]
    previous[model] = history
    return {APPROVED_KEY: approved, PREVIOUS_KEY: previous, "replaced": old}


def plan_rollback(path: Path, model: str) -> dict[str, Any]:
    """Restore the newest earlier package; the one rolled back from leaves the stack."""
    approved = approved_packages(path)
    previous = previous_packages(path)
    history = previous.get(model, [])
    if not history:
        raise StackFileError(
            f"{path.name}: no earlier package for model {model!r} in {PREVIOUS_KEY}; nothing to roll back to"
        )
    restored = history[-1]
    current = approved.get(model, "")
    approved[model] = restored
    previous[model] = history[:-1]
    return {APPROVED_KEY: approved, PREVIOUS_KEY: previous, "replaced": current, "restored": restored}


def write_keys(path: Path, values: dict[str, Any], validate=None) -> str:
    """Set top-level config keys in the file, keeping every other line; returns the new text.

    `validate(text)` may raise to veto the result (e.g. the typed config loader); the file is
    then left as it was.
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8")  # not read_text(): keep CRLF line ends as they are
    previous_key = None
    for key, value in values.items():
        text = set_config_value(text, key, value, after=previous_key)
        previous_key = key
    expected = load_document(path)
    expected.setdefault("config", {}).update(values)
    try:
        actual = yaml.safe_load(text)
    except yaml.YAMLError as err:  # pragma: no cover - guarded by the rendering below
        raise StackFileError(f"editing {path.name} produced invalid YAML ({err}); the file is unchanged") from err
    if actual != expected:
        raise StackFileError(f"editing {path.name} would change more than {', '.join(values)}; the file is unchanged")
    if validate is not None:
        validate(text)
    _atomic_write(path, text)
    return text


def set_config_value(text: str, key: str, value: Any, after: str | None = None) -> str:
    """Replace (or add) one key directly under `config:`; other lines are kept byte for byte.

    A new key goes after the block of `after` when that key exists, else at the end of `config:`.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
        had_final_newline = False
    else:
        had_final_newline = True
    config_at = next((i for i, ln in enumerate(lines) if re.match(r"^config:\s*(#.*)?$", ln.rstrip("\r\n"))), None)
    if config_at is None:
        out = lines + ["config:" + newline] + _render(key, value, "  ", "  ", None, newline)
        return _finish(out, had_final_newline)
    children, child_indent, config_end = _config_children(lines, config_at)
    if key in children:
        start, end = children[key]
        key_line = lines[start].rstrip("\r\n")
        inline_value, comment = _split_value(_after_key(key_line))
        nested = _nested_step(lines, start, end, child_indent)
        rendered = _render(
            key,
            value,
            child_indent,
            nested,
            comment,
            newline,
            style="flow" if inline_value else "block",
            key_text=_key_text(key_line),
        )
        return _finish(lines[:start] + rendered + lines[end:], had_final_newline)
    if after in children:
        insert_at = children[after][1]
    else:
        insert_at = config_end
        while insert_at > config_at + 1 and not lines[insert_at - 1].strip():
            insert_at -= 1
    rendered = _render(key, value, child_indent, "  ", None, newline)
    return _finish(lines[:insert_at] + rendered + lines[insert_at:], had_final_newline)


def _config_children(lines: list[str], config_at: int) -> tuple[dict[str, tuple[int, int]], str, int]:
    """Each key under `config:` -> (first line, line after its block); its indent; end of `config:`."""
    children: dict[str, tuple[int, int]] = {}
    child_indent: str | None = None
    current: str | None = None
    config_end = len(lines)
    for i in range(config_at + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(lines[i])
        if not indent:
            config_end = i
            break
        if child_indent is None:
            child_indent = indent
        if indent == child_indent:
            current = _line_key(stripped)
            if current is not None:
                children[current] = (i, i + 1)
        elif current is not None and len(indent) > len(child_indent):
            children[current] = (children[current][0], i + 1)
    return children, child_indent or "  ", config_end


def _nested_step(lines: list[str], start: int, end: int, child_indent: str) -> str:
    for i in range(start + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return _indent(lines[i])[len(child_indent) :] or "  "
    return "  "


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _finish(lines: list[str], final_newline: bool) -> str:
    text = "".join(lines)
    return text if final_newline else text.rstrip("\r\n")


# A YAML key: quoted, or plain (a plain key may hold colons not followed by a space, e.g. `mlops:gate`).
_KEY = r"""("[^"]+"|'[^']+'|[^\s'"#](?:[^:#]|:(?!\s|$))*?)\s*:(?:\s|$)"""


def _line_key(stripped: str) -> str | None:
    match = re.match(_KEY, stripped)
    return match.group(1).strip("'\"") if match else None


def _key_text(key_line: str) -> str:
    match = re.match(_KEY, key_line.strip())
    return match.group(1) if match else key_line.strip()


def _after_key(key_line: str) -> str:
    stripped = key_line.strip()
    return stripped[len(_key_text(key_line)) :].lstrip()[1:]


def _split_value(rest: str) -> tuple[str, str | None]:
    """Split `value  # comment` (outside quotes) into its parts."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i:].strip()
    return rest.strip(), None


def _scalar(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers and booleans are valid YAML scalars


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _render(key, value, indent, step, comment, newline, *, style="block", key_text=None) -> list[str]:
    head = f"{indent}{key_text or key}:"
    tail = f"  {comment}" if comment else ""
    if style == "flow" or not isinstance(value, (dict, list)) or not value:
        return [f"{head} {_flow(value)}{tail}{newline}"]
    out = [f"{head}{(' ' + comment) if comment else ''}{newline}"]
    out.extend(_block(value, indent + step, step, newline))
    return out


def _block(value: Any, indent: str, step: str, newline: str) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{indent}{_scalar(str(k)) if _needs_quote(str(k)) else k}:{newline}")
                out.extend(_block(v, indent + step, step, newline))
            else:
                out.append(f"{indent}{_scalar(str(k)) if _needs_quote(str(k)) else k}: {_flow(v)}{newline}")
    else:
        for v in value:
            out.append(f"{indent}- {_flow(v)}{newline}")
    return out


def _needs_quote(key: str) -> bool:
    return not re.match(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$", key)


def _atomic_write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
