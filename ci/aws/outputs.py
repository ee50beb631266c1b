"""Stack outputs for every command: one parser, one typed object, wherever they come from.

Sources, in the order `auto` tries them:
  1. a file (or `-` for stdin) holding `pulumi stack output --json`;
  2. the Pulumi CLI itself, when it is on PATH (a deployed stack is the truth);
  3. the local backend's state (`mlops local up` against the emulator writes it);
  4. the offline preview of the stack's program (`infra.preview.preview_stack`).
Every command finds its buckets, role, groups and topic here, never from hard-coded names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.errors import MlopsError, UnknownStackError, UsageError
from kernel.paths import REPO_ROOT, STACKS_DIR, known_stacks, stack_name, stack_path

if TYPE_CHECKING:  # pydantic's models load at first use: `mlops --help` stays a tenth of a second
    from kernel.stack_outputs import StackOutputs

SOURCES = ("auto", "file", "pulumi", "local", "preview")


def default_stacks_dir() -> Path:
    return Path(os.environ.get("MLOPS_STACKS_DIR") or STACKS_DIR)


def state_dir() -> Path:
    """Where the local backend keeps what it provisioned (git-ignored)."""
    return Path(os.environ.get("MLOPS_STATE_DIR") or REPO_ROOT / ".mlops")


def stack_file(stack: str, stacks_dir: Path | None = None) -> Path:
    """`stacks/Pulumi.<stack>.yaml`, or a clear error listing the stacks there are."""
    stacks_dir = Path(stacks_dir or default_stacks_dir())
    path = stack_path(stack, stacks_dir)
    if not path.is_file():
        known = ", ".join(known_stacks(stacks_dir)) or "none"
        raise UnknownStackError(f"unknown stack {stack!r}: no {path} (stacks in {stacks_dir}: {known})")
    return path


@dataclass(frozen=True)
class ResolvedOutputs:
    outputs: StackOutputs
    source: str  # "file:<path>", "pulumi", "local:<path>", "preview"


def parse_outputs(raw: Any, origin: str) -> StackOutputs:
    """The typed outputs, or an error that names the missing keys and where they were read."""
    if not isinstance(raw, dict):
        raise UsageError(f"stack outputs from {origin} must be a JSON object, got {type(raw).__name__}")
    from kernel.stack_outputs import MissingOutputsError, StackOutputs

    try:
        return StackOutputs.from_dict(raw)
    except MissingOutputsError as err:
        raise MlopsError(f"missing outputs in {origin}: {err}") from err
    except (TypeError, ValueError) as err:
        raise UsageError(f"malformed stack outputs in {origin}: {err}") from err


def read_outputs_file(path: str) -> StackOutputs:
    origin = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as err:
        raise UsageError(f"cannot read stack outputs file {path}: {err.strerror}") from err
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"stack outputs in {origin} are not JSON ({err}); produce them with `pulumi stack output --json`"
        ) from err
    return parse_outputs(raw, origin)


def local_outputs_path(stack: str) -> Path:
    return state_dir() / "local" / stack_name(stack) / "outputs.json"


def resolve_outputs(
    stack: str,
    *,
    stacks_dir: Path | None = None,
    outputs_file: str | None = None,
    source: str = "auto",
) -> ResolvedOutputs:
    """Find the stack's outputs; see the module docstring for the order."""
    if source not in SOURCES:
        raise UsageError(f"--outputs-from must be one of {', '.join(SOURCES)}, got {source!r}")
    if outputs_file or source == "file":
        if not outputs_file:
            raise UsageError("--outputs-from file needs --outputs FILE (or - for stdin)")
        outputs = read_outputs_file(outputs_file)
        _check_stack(outputs, stack, outputs_file)
        return ResolvedOutputs(outputs, f"file:{outputs_file}")
    path = stack_file(stack, stacks_dir)
    name = stack_name(stack)
    emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))  # an emulator run never reads a deployed stack
    if source == "pulumi" or (source == "auto" and shutil.which("pulumi") and name != "local" and not emulated):
        return ResolvedOutputs(_pulumi_outputs(name), "pulumi")
    local = local_outputs_path(name)
    if source == "local" or (source == "auto" and local.is_file() and emulated):
        if not local.is_file():
            raise MlopsError(
                f"no local backend state for stack {name!r} at {local}; run `mlops local up --stack {name}`"
            )
        return ResolvedOutputs(parse_outputs(json.loads(local.read_text()), str(local)), f"local:{local}")
    return ResolvedOutputs(preview_outputs(path), "preview")


def preview_outputs(path: Path) -> StackOutputs:
    return parse_outputs(_preview_raw(path), f"the offline preview of {path.name}")


_PREVIEW_CACHE: dict[tuple[str, str], dict] = {}


def _preview_raw(path: Path) -> dict:
    """Outputs of the offline preview, cached per stack name and file content (a preview takes a second)."""
    key = (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _PREVIEW_CACHE:
        from infra.preview import preview_stack

        _PREVIEW_CACHE[key] = dict(preview_stack(path).outputs)
    return _PREVIEW_CACHE[key]


def _pulumi_outputs(stack: str) -> StackOutputs:
    if not shutil.which("pulumi"):
        raise MlopsError("--outputs-from pulumi needs the Pulumi CLI on PATH")
    proc = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        raise MlopsError(f"`pulumi stack output --stack {stack}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise MlopsError(f"`pulumi stack output --json` printed no JSON: {err}") from err
    return parse_outputs(raw, f"`pulumi stack output --stack {stack}`")


def _check_stack(outputs: StackOutputs, stack: str, origin: str) -> None:
    name = stack_name(stack)
    if outputs.stackName != name:
        raise UsageError(f"the outputs in {origin} belong to stack {outputs.stackName!r}, not {name!r}")
