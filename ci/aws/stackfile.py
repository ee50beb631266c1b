"""Read and edit `stacks/Pulumi.<env>.yaml` the way a person would: touch one key, keep the rest.

Promotion and rollback change two machine-managed keys, `mlops:approvedPackages` and
`mlops:previousPackages`. PyYAML would drop every comment on a round trip, so the edit is made
through ruamel.yaml's round trip (comments, quoting, flow or block style and order are kept, inside
the edited block too). The result is parsed again and must equal the intended configuration
exactly, or nothing is written; the write itself is atomic (temp file + rename), through a symlink.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from ci.errors import UsageError

APPROVED_KEY = "mlops:approvedPackages"
PREVIOUS_KEY = "mlops:previousPackages"


class StackFileError(UsageError):
    pass


def load_document(path: Path) -> dict[str, Any]:
    from kernel.stack_config import load_yaml_bounded  # one bounded reader for stack files (aliases, size)

    try:
        doc = load_yaml_bounded(Path(path)) or {}
    except (ValueError, OSError) as err:
        raise StackFileError(str(err)) from err
    if not isinstance(doc, dict):
        raise StackFileError(f"{path} must be a mapping with a `config:` key")
    return doc


def read_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file (keys like `mlops:gate`, `aws:region`), as infra reads it."""
    from kernel.stack_config import read_raw_config

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
    """Set top-level config keys in the file, keeping every other byte; returns the new text.

    The file is edited through ruamel.yaml's round trip: comments (inside the edited block too),
    quoting, flow or block style and key order stay as they were. A symlinked stack file is edited
    where it points. `validate(text)` may raise to veto the result (e.g. the typed config loader);
    the file is then left byte-identical.
    """
    path = Path(path).resolve()  # follow a symlink: replace the file it names, not the link
    text = _read_text(path)
    newline = "\r\n" if "\r\n" in text else "\n"
    rt = _round_trip(text)
    try:
        doc = rt.load(text)
    except YAMLError as err:
        raise StackFileError(f"{path.name} is not valid YAML: {err}") from err
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("config", CommentedMap()), CommentedMap):
        raise StackFileError(f"{path.name} must be a mapping with a `config:` mapping")
    config = doc.setdefault("config", CommentedMap())
    previous_key = None
    for key, value in values.items():
        _set(config, key, value, after=previous_key)
        previous_key = key
    out = io.StringIO()
    rt.dump(doc, out)
    result = out.getvalue()
    if newline == "\r\n":
        result = result.replace("\r\n", "\n").replace("\n", "\r\n")
    if not text.endswith(("\n", "\r")):
        result = result.rstrip("\r\n")
    expected = load_document(path)
    expected.setdefault("config", {}).update(values)
    if yaml.safe_load(result) != expected:
        raise StackFileError(f"editing {path.name} would change more than {', '.join(values)}; the file is unchanged")
    if validate is not None:
        validate(result)
    _atomic_write(path, result)
    return result


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")  # not read_text(): keep CRLF line ends as they are
    except UnicodeDecodeError as err:
        raise StackFileError(
            f"{path.name} is not UTF-8 ({err.reason} at byte {err.start}); the file is unchanged"
        ) from err


def _round_trip(text: str) -> YAML:
    """A round-trip loader/dumper set to the file's own indentation, so untouched lines stay byte-identical."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long ARN
    try:
        _, sequence_indent, offset = load_yaml_guess_indent(text)
    except YAMLError:
        sequence_indent, offset = None, None
    rt.indent(mapping=2, sequence=sequence_indent or 4, offset=offset if offset is not None else 2)
    return rt


def _set(container: CommentedMap | CommentedSeq, key: Any, value: Any, after: Any = None) -> None:
    """Assign in place, so the comments and style ruamel keeps on the old node stay attached."""
    old = container[key] if isinstance(container, CommentedSeq) or key in container else None
    if isinstance(value, dict) and isinstance(old, CommentedMap):
        for k in [k for k in old if k not in value]:
            del old[k]
        for k, v in value.items():
            _set(old, k, v)
        return
    if isinstance(value, list) and isinstance(old, CommentedSeq):
        del old[len(value) :]
        for i, v in enumerate(value):
            if i < len(old):
                _set(old, i, v)
            else:
                old.append(_quoted(v))
        return
    if isinstance(value, str) and isinstance(old, ScalarString):
        value = type(old)(value)  # keep the old quoting style
    else:
        value = _quoted(value)
    if isinstance(container, CommentedMap) and key not in container and after in container:
        container.insert(list(container).index(after) + 1, key, value)
    else:
        container[key] = value


def _quoted(value: Any) -> Any:
    """New strings are written double-quoted, as JSON would (ARNs hold colons); containers recursively."""
    if isinstance(value, str) and not isinstance(value, ScalarString):
        return DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return value


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
