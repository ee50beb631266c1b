"""docs/aws-rules.md and the tests hold each other: every rule has a test, every test's rule a row."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULE_ID = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+"
CITED = re.compile(rf"AWS rules?:?\s+({RULE_ID}(?:(?:,\s*|\s+and\s+){RULE_ID})*)")
ROW = re.compile(rf"^\|\s*`?({RULE_ID})`?\s*\|", re.M)


def _cited_by_tests() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for listed in CITED.findall(path.read_text()):
            for rule in re.findall(RULE_ID, listed):
                cited.setdefault(rule, []).append(path.name)
    return cited


def _documented() -> set[str]:
    return set(ROW.findall((ROOT / "docs" / "aws-rules.md").read_text()))


def test_every_documented_rule_is_encoded_by_a_test():
    missing = sorted(_documented() - set(_cited_by_tests()))
    assert not missing, f"rules in docs/aws-rules.md that no test names ('AWS rule: ID'): {missing}"


def test_every_rule_a_test_names_is_documented_with_its_source():
    undocumented = {rule: files for rule, files in _cited_by_tests().items() if rule not in _documented()}
    assert not undocumented, f"tests name rules that docs/aws-rules.md lacks: {undocumented}"


def test_every_row_cites_a_source():
    for line in (ROOT / "docs" / "aws-rules.md").read_text().splitlines():
        if ROW.match(line):
            assert "https://" in line or "botocore" in line, f"no source: {line}"
