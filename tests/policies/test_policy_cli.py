"""`mlops audit` and `mlops cost` through the real CLI entry point (in process)."""

from __future__ import annotations

import json

import pytest
from policy_testkit import FIXTURES

from ci.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_stack_json_shape_and_exit_code(capsys):
    code, out, err = run(capsys, "audit", "--stack", "prod", "--json")
    doc = json.loads(out)
    assert code == 0 and "previewing stack prod" in err
    assert set(doc) >= {"violations", "summary"}
    for v in doc["violations"]:
        assert set(v) >= {"rule", "severity", "enforcement", "urn", "type", "message"}
    assert doc["summary"]["mandatory"] == 0 and doc["summary"]["stacks"]["prod"]["environment"] == "prod"


def test_audit_table_of_a_clean_stack(capsys):
    code, out, _ = run(capsys, "audit", "--stack", "dev")
    assert code == 0 and out.startswith("stack dev (preview: stacks/Pulumi.dev.yaml; environment dev)")
    assert "0 violation(s)" in out and "result: PASS" in out


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"shared fixtures not present at {FIXTURES}")
def test_audit_table_groups_by_resource(capsys):
    code, out, _ = run(capsys, "audit", "--state", str(FIXTURES / "kms-key.json"), "--stack", "dev")
    assert code == 0 and "result: PASS" in out  # dev: advisory only
    key_section = out.split("  a  aws:kms/key:Key\n", 1)[1].split("\n\n", 1)[0]
    assert "[advisory/high] kms-key-rotation" in key_section and "tags-required" in key_section
    assert "cost-budget-exists" not in key_section  # a stack-level finding sits under the stack resource


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"shared fixtures not present at {FIXTURES}")
def test_audit_state_fails_on_mandatory_violations_and_writes_sarif(capsys, tmp_path):
    out_file = tmp_path / "audit.sarif"
    code, _, err = run(
        capsys, "audit", "--state", str(FIXTURES / "ecr-repository.json"), "--format", "sarif", "-o", str(out_file)
    )
    sarif = json.loads(out_file.read_text())
    assert code == 1 and "wrote" in err
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["name"] == "mlops-policies"
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"ecr-immutable-tags", "ecr-kms-encryption"}
    assert all(r["level"] == "error" for r in results)
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    location = results[0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("ecr-repository.json")
    assert location["logicalLocations"][0]["fullyQualifiedName"].endswith("::foo")


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"shared fixtures not present at {FIXTURES}")
def test_audit_state_judged_against_a_stack(capsys):
    code, out, _ = run(capsys, "audit", "--state", str(FIXTURES / "kms-key.json"), "--stack", "dev", "--json")
    doc = json.loads(out)
    assert code == 0  # dev: advisory
    assert {v["enforcement"] for v in doc["violations"]} == {"advisory"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["audit"], "say what to audit"),
        (["audit", "--all", "--stack", "dev"], "do not combine"),
        (["audit", "--stack", "qa"], "no stack file"),
        (["audit", "--state", "/nonexistent/state.json"], "no such file"),
        (["audit", "--state", "x.json", "--policy-config", "p.json"], "--policy-config needs --stack"),
        (["cost", "--stack", "qa"], "no stack file"),
    ],
)
def test_usage_errors_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_audit_writes_the_crossguard_policy_config(capsys, tmp_path):
    path = tmp_path / "prod-policy.json"
    code, _, _ = run(capsys, "audit", "--stack", "prod", "--json", "--policy-config", str(path))
    config = json.loads(path.read_text())
    assert code == 0 and config["kms-key-rotation"]["enforcementLevel"] == "mandatory"


def test_cost_json_and_table(capsys):
    code, out, _ = run(capsys, "cost", "--stack", "prod", "--assume-deployed", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["budgetUsd"] == 6000.0 and doc["withinBudget"] is True
    assert doc["byComponent"]["endpoint"] > 0 and doc["trainingRun"]["instanceType"] == "ml.g5.12xlarge"
    code, out, _ = run(capsys, "cost", "--stack", "dev", "--training-runs", "0")
    assert code == 0 and "one training run on 1 x ml.g5.xlarge" in out and "/month of a $300.00 budget" in out


def test_cost_rejects_negative_assumptions(capsys):
    # argparse's refusal goes through mlops's one error path: exit 2 returned, one line, no SystemExit
    assert main(["cost", "--stack", "dev", "--training-runs", "-1"]) == 2
    assert "must not be negative" in capsys.readouterr().err
