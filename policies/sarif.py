"""SARIF 2.1.0 output, so GitHub code scanning (and other SARIF viewers) show policy violations.

Mandatory violations are `error`, advisory ones `warning`; suppressed ones are reported with a
SARIF suppression carrying the reason and expiry. Each result points at the file the verdict is
about (the stack config for a preview, the state file for an export) and names the resource's
URN as its logical location.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policies.audit import AuditTarget
from policies.engine import AuditResult, Violation
from policies.rules import RULES, Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
TOOL = "mlops-policies"


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.description},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.why}\nFix: {rule.fix}", "markdown": f"{rule.why}\n\n**Fix:** {rule.fix}"},
        "defaultConfiguration": {"level": "error" if rule.severity in ("critical", "high") else "warning"},
        "properties": {
            "tags": ["security", rule.family],
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
        },
    }


def _result(v: Violation, location: str, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": v.rule,
        "ruleIndex": index[v.rule],
        "level": "error" if v.enforcement == "mandatory" else "warning",
        "message": {"text": v.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": location}, "region": {"startLine": 1}},
                "logicalLocations": [{"name": v.name, "fullyQualifiedName": v.urn, "kind": "resource"}],
            }
        ],
        "partialFingerprints": {"resourceRule/v1": f"{v.urn}|{v.rule}"},
        "properties": {
            "enforcement": v.enforcement,
            "severity": v.severity,
            "verdict": v.verdict,
            "resourceType": v.type,
        },
    }
    if v.suppression is not None:
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{v.suppression.reason} (expires {v.suppression.expires.isoformat()})",
            }
        ]
    return out


def to_sarif(results: Iterable[tuple[AuditTarget, AuditResult]]) -> dict[str, Any]:
    index = {r.id: i for i, r in enumerate(RULES)}
    sarif_results = []
    for target, result in results:
        for v in result.violations + result.suppressed:
            sarif_results.append(_result(v, target.location, index))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": TOOL, "version": "0.1.0", "rules": [_rule_descriptor(r) for r in RULES]}},
                "results": sarif_results,
            }
        ],
    }
