"""The lineage record: what a model is made of, in one immutable JSON document.

The container writes what it knows (library versions, hyperparameters, seed, metrics) as
`lineage.json` beside the model; the pipeline adds what only it knows (git commit and dirty
flag, the data manifest with S3 versions and SHA-256, the image URI with its digest, the
stack, the training job). The merged record is stored beside `model.tar.gz` and referenced,
with its SHA-256, from the model package; `mlops reproduce` reads it back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from kernel.paths import REPO_ROOT

SCHEMA_VERSION = 1


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit and dirty flag of the code that trains; CI's GITHUB_SHA when git is not there."""

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD") or os.environ.get("GITHUB_SHA") or "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "ml")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def merge(container_record: dict[str, Any] | None, pipeline_fields: dict[str, Any]) -> dict[str, Any]:
    """The container's record plus the pipeline's fields; the pipeline's win on a clash."""
    record = dict(container_record or {})
    record.update(pipeline_fields)
    record["schemaVersion"] = SCHEMA_VERSION
    return record


def read_container_record(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "lineage.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def canonical_bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True, default=str).encode()
