"""The GitHub workflows pass a security linter and GitHub's schema, and keep the hardening rules.

zizmor (offline, default persona) and check-jsonschema (GitHub's workflow schema, vendored in the
package) run from the lock, exactly as the checks workflow runs them.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _tool(name):
    return shutil.which(name, path=str(BIN)) or shutil.which(name)


@pytest.mark.skipif(_tool("zizmor") is None, reason="zizmor is not installed (it is in requirements.lock)")
def test_zizmor_reports_nothing():
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "regular", "--format", "plain", ".github/workflows"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "No findings" in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.skipif(_tool("check-jsonschema") is None, reason="check-jsonschema is not installed")
def test_every_workflow_validates_against_githubs_schema():
    done = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _steps(doc):
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps") or []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_with_the_tag_in_a_comment(path):
    text = path.read_text()
    for line in text.splitlines():
        match = re.match(r"^\s*(?:- )?uses: (\S+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()} is not pinned by a full commit SHA"
        assert re.match(r"\s+# v\d+(\.\d+)*", match.group(2)), f"{path.name}: {line.strip()} names no tag"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials_and_secrets_stay_in_their_steps(path):
    doc = yaml.safe_load(path.read_text())
    for step in _steps(doc):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, path.name
    for name, job in (doc.get("jobs") or {}).items():
        assert job.get("secrets") != "inherit", f"{path.name}: job {name} inherits every secret"
        assert "secrets." not in yaml.safe_dump(job.get("env") or {}), f"{path.name}: job {name} puts a secret in env"
    assert "secrets." not in yaml.safe_dump(doc.get("env") or {}), f"{path.name}: a workflow-wide secret"
