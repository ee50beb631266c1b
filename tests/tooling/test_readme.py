"""A fresh clone needs two commands: the README opens with them and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.strip().splitlines() if line.split("#")[0].strip()]


def test_the_readme_opens_with_the_demo_and_the_tests():
    first_block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert _commands(first_block) == ["make demo", "make test"]


def test_ci_runs_the_readmes_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert _commands("\n".join(ln for ln in script.splitlines() if not ln.startswith(("set ", "cd ")))) == ["make test"]


def test_both_targets_build_the_environment_from_the_lock_when_missing():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: \$\(STAMP\)$", makefile, re.M)
    assert re.search(r"^test: \$\(STAMP\)$", makefile, re.M)
    assert re.search(r"^\$\(STAMP\): requirements\.lock", makefile, re.M)
    assert "pip install -r requirements.lock" in makefile
