"""docs/policies.md documents every rule: why it exists, how to fix it, and the AWSGuard comparison."""

from __future__ import annotations

from policy_testkit import REPO

from policies.rules import RULES


def test_every_rule_has_a_section_in_the_docs():
    text = (REPO / "docs" / "policies.md").read_text()
    missing = [r.id for r in RULES if f"### {r.id}" not in text]
    assert missing == []
    for heading in ("## Suppressing a violation", "## Coverage compared with AWSGuard", "## Enforcement levels"):
        assert heading in text
