"""One repository root and one way to resolve a stack: kernel/paths.py, for infra, ci and policies."""

from __future__ import annotations

import re
from pathlib import Path

from kernel.paths import REPO_ROOT, STACKS_DIR, known_stacks, stack_name, stack_path


def test_a_name_is_a_file_in_the_stacks_folder_and_a_path_is_itself(tmp_path):
    assert stack_path("dev") == STACKS_DIR / "Pulumi.dev.yaml"
    assert stack_path("dev", tmp_path) == tmp_path / "Pulumi.dev.yaml"
    assert stack_path("/x/Pulumi.qa.yaml") == Path("/x/Pulumi.qa.yaml")
    assert stack_path("/x/custom.yml") == Path("/x/custom.yml")


def test_a_stack_is_named_the_same_whether_given_by_name_or_file():
    assert stack_name("dev") == stack_name("stacks/Pulumi.dev.yaml") == stack_name(Path("/x/Pulumi.dev.yml")) == "dev"
    assert stack_name("/x/custom.yaml") == "custom"


def test_the_shipped_stacks_are_known():
    assert known_stacks() == ["dev", "local", "prod", "staging"]
    assert (REPO_ROOT / "pyproject.toml").is_file()


def test_the_root_and_the_stacks_folder_are_defined_only_here():
    pattern = re.compile(r"^\s*(REPO_ROOT|STACKS_DIR)\s*=", re.M)
    defined = [
        str(p.relative_to(REPO_ROOT))
        for folder in ("ci", "infra", "policies", "kernel")
        for p in (REPO_ROOT / folder).rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert defined == ["kernel/paths.py"]
