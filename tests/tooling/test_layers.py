"""The layers of the tree, read from the source with `ast` (nothing is imported, nothing runs).

Inside ci/ imports run one way: commands -> steps -> aws, with the emulator beside the steps
(ci/emulator/__init__.py says why); ci's root modules (errors, progress) serve every
layer. Across the tree: policies/ imports no ci, ml/ imports nothing of ours outside ml/, and
kernel/ imports none of ci, infra, policies or ml. Every import counts, a function's too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = ("ci", "infra", "policies", "kernel", "ml")

# What each layer of ci/ may import (itself included). "root" is ci/'s own modules.
CI_ALLOWED = {
    "commands": {"commands", "emulator", "steps", "aws", "root"},
    "emulator": {"emulator", "steps", "aws", "root"},
    "steps": {"steps", "aws", "root"},
    "aws": {"aws", "root"},
    "root": {"root"},
}
# ci/'s entry points belong to the command layer (ci/commands/ holds the rest of it).
COMMAND_MODULES = {"cli", "__main__"}
# Known crossings, each with the reason it is there and what ends it (none today).
CI_EXCEPTIONS: set[tuple[str, str]] = set()
ROOT_ENTRY_POINTS = {"cli.py", "__init__.py", "__main__.py"}
MAX_ROOT_MODULES = 4


def module_of(path: str) -> str:
    """`ci/steps/training.py` -> `ci.steps.training`; a package's __init__ is the package."""
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, path: str) -> set[str]:
    """Every module (or module.name) the file imports, made absolute, wherever the import stands."""
    package = Path(path).parent.parts  # what `from . import x` is relative to
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def ci_layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("commands", "steps", "aws", "emulator"):
        return parts[1]
    if len(parts) > 1 and (parts[1] in COMMAND_MODULES or parts[1].startswith("commands_")):
        return "commands"
    return "root"


def ci_violations(sources: dict[str, str]) -> list[str]:
    """`file: imports X (layer A may not import layer B)` for each import against the layers."""
    bad = []
    for path, source in sorted(sources.items()):
        module = module_of(path)
        layer = ci_layer(module)
        for target in sorted(imports_of(source, path)):
            if target.split(".")[0] != "ci":
                continue
            target_layer = ci_layer(target)
            excepted = any(module == m and target.startswith(t) for m, t in CI_EXCEPTIONS)
            if target_layer not in CI_ALLOWED[layer] and not excepted:
                bad.append(f"{path}: imports {target} ({layer} may not import {target_layer})")
    return bad


def boundary_violations(sources: dict[str, str], forbidden: tuple[str, ...]) -> list[str]:
    """`file: imports X` for each import of a package in `forbidden`."""
    return [
        f"{path}: imports {target}"
        for path, source in sorted(sources.items())
        for target in sorted(imports_of(source, path))
        if target.split(".")[0] in forbidden
    ]


def extra_root_modules(names: set[str]) -> list[str]:
    """ci/'s root modules beyond its entry points."""
    return sorted(names - ROOT_ENTRY_POINTS)


def sources_under(folder: str) -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for p in sorted((REPO / folder).rglob("*.py"))}


# --- the tree ------------------------------------------------------------------------------


def test_ci_imports_run_commands_steps_aws():
    assert ci_violations(sources_under("ci")) == []


def test_policies_import_no_ci():
    assert boundary_violations(sources_under("policies"), ("ci",)) == []


def test_ml_imports_nothing_of_ours_outside_ml():
    assert boundary_violations(sources_under("ml"), ("ci", "infra", "policies", "kernel")) == []


def test_kernel_imports_none_of_ci_infra_policies_ml():
    assert boundary_violations(sources_under("kernel"), ("ci", "infra", "policies", "ml")) == []


def test_ci_root_keeps_at_most_four_modules():
    names = {p.name for p in (REPO / "ci").glob("*.py")}
    assert len(extra_root_modules(names)) <= MAX_ROOT_MODULES, extra_root_modules(names)


# --- the checks catch what they are for ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("ci/steps/train.py", "from ci.commands_pipeline import main\n"),
        ("ci/steps/train.py", "def f():\n    from ci import cli\n"),
        ("ci/steps/train.py", "import ci.emulator.demo\n"),
        ("ci/aws/s3.py", "from ci.steps import training\n"),
        ("ci/aws/s3.py", "from ci.emulator.hosting import serve\n"),
        ("ci/emulator/demo.py", "from ci.commands.train import train\n"),
        ("ci/progress.py", "from ci.steps.pipeline import train\n"),
        ("ci/errors.py", "from ci.steps.pipeline import train\n"),
        ("ci/aws/s3.py", "from ..steps import training\n"),
        ("ci/steps/__init__.py", "from ..emulator import demo\n"),
    ],
)
def test_an_import_against_the_layers_is_caught(path, source):
    assert ci_violations({path: source}) != []


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("ci/cli.py", "from ci.steps.pipeline import train\nfrom ci.emulator import demo\n"),
        ("ci/commands/train.py", "from ci.aws import clients\nfrom ci import errors\n"),
        ("ci/emulator/demo.py", "from ci.steps import pipeline\nfrom ci.aws import registry\n"),
        ("ci/steps/train.py", "from ci.aws import s3\nfrom ci.progress import QUIET\nimport ci.steps.lineage\n"),
        ("ci/aws/registry.py", "from ci.aws import clients as aws\nfrom ci.errors import UsageError\n"),
        ("ci/aws/registry.py", "from . import clients\nfrom .. import errors\n"),
    ],
)
def test_an_import_along_the_layers_passes(path, source):
    assert ci_violations({path: source}) == []


@pytest.mark.parametrize(
    ("path", "source", "forbidden"),
    [
        ("policies/rules.py", "import ci.cli\n", ("ci",)),
        ("ml/train.py", "def f():\n    from kernel import names\n", ("ci", "infra", "policies", "kernel")),
        ("ml/serve.py", "from infra.contract import StackOutputs\n", ("ci", "infra", "policies", "kernel")),
        ("kernel/names.py", "from infra import config\n", ("ci", "infra", "policies", "ml")),
    ],
)
def test_an_import_across_a_boundary_is_caught(path, source, forbidden):
    assert boundary_violations({path: source}, forbidden) != []


def test_a_fifth_root_module_is_caught():
    four = {"errors.py", "progress.py", "jsonable.py", "outputs.py"}
    assert len(extra_root_modules(ROOT_ENTRY_POINTS | four)) == MAX_ROOT_MODULES
    assert len(extra_root_modules(ROOT_ENTRY_POINTS | four | {"training.py"})) > MAX_ROOT_MODULES
