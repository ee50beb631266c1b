"""Where the repository and its stack files are: one definition for infra/, ci/ and policies/.

A stack is named (`dev`) or given as its file (`…/Pulumi.dev.yaml`); both mean the same stack
everywhere, so the program, the pipeline and the auditor resolve them here.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STACKS_DIR = REPO_ROOT / "stacks"
STACK_FILE_SUFFIXES = (".yaml", ".yml")


def is_stack_file(stack: str | Path) -> bool:
    """A path to a stack file rather than a stack name."""
    return Path(stack).suffix in STACK_FILE_SUFFIXES


def stack_path(stack: str | Path, stacks_dir: Path = STACKS_DIR) -> Path:
    """The file of a stack: `<stacks_dir>/Pulumi.<name>.yaml` for a name, the path itself for a file."""
    return Path(stack) if is_stack_file(stack) else stacks_dir / f"Pulumi.{stack}.yaml"


def stack_name(stack: str | Path) -> str:
    """The stack's name: `dev` for `dev` and for `…/Pulumi.dev.yaml`."""
    if not is_stack_file(stack):
        return str(stack)
    return Path(stack).name.removeprefix("Pulumi.").rsplit(".", 1)[0]


def known_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    """The stacks that have a `Pulumi.<name>.yaml` in the folder, sorted."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml"))
