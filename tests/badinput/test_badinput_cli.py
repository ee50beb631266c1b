"""Bad command-line arguments: each refused with exit 2 (or the documented code of the check that
catches it first) in one line naming the flag; never a traceback, never taken silently. NaN and
infinity parse as floats, so every numeric flag says its finite range (ci/commands/argtypes.py)."""

from __future__ import annotations

import pytest
from badinput_kit import assert_refused, run_mlops

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/1"
CASES = {
    "no-command": [],
    "unknown-command": ["deploy"],
    "unknown-flag": ["train", "--stack", "dev", "--frobnicate"],
    "train-no-stack": ["train"],
    "train-unknown-stack": ["train", "--stack", "qa"],
    "train-stack-path-traversal": ["train", "--stack", "../../etc/passwd"],
    "train-seed-text": ["train", "--stack", "dev", "--seed", "x"],
    "train-seed-float": ["train", "--stack", "dev", "--seed", "1.5"],
    "train-synthetic-negative": ["train", "--stack", "dev", "--synthetic", "-5", "--dry-run"],
    "train-synthetic-text": ["train", "--stack", "dev", "--synthetic", "many"],
    "train-drift-nan": ["train", "--stack", "dev", "--synthetic", "100", "--synthetic-drift", "nan", "--dry-run"],
    "train-drift-inf": ["train", "--stack", "dev", "--synthetic", "100", "--synthetic-drift", "inf", "--dry-run"],
    "train-poll-nan": ["train", "--stack", "dev", "--poll-seconds", "nan", "--dry-run", "--synthetic", "100"],
    "train-poll-negative": ["train", "--stack", "dev", "--poll-seconds", "-1", "--dry-run", "--synthetic", "100"],
    "train-hp-no-equals": ["train", "--stack", "dev", "--hp", "epochs", "--dry-run", "--synthetic", "100"],
    "train-hp-nan": ["train", "--stack", "dev", "--hp", "learning_rate=nan", "--dry-run", "--synthetic", "100"],
    "train-hp-inf": ["train", "--stack", "dev", "--hp", "learning_rate=inf", "--dry-run", "--synthetic", "100"],
    "train-hp-unknown": ["train", "--stack", "dev", "--hp", "colour=blue", "--dry-run", "--synthetic", "100"],
    "train-hp-epochs-0": ["train", "--stack", "dev", "--hp", "epochs=0", "--dry-run", "--synthetic", "100"],
    "train-gpu-not-allowed": [
        "train",
        "--stack",
        "dev",
        "--instance-type",
        "ml.p5.48xlarge",
        "--dry-run",
        "--synthetic",
        "100",
    ],
    "train-instance-garbage": [
        "train",
        "--stack",
        "dev",
        "--instance-type",
        "banana",
        "--dry-run",
        "--synthetic",
        "100",
    ],
    "train-model-unknown": ["train", "--stack", "dev", "--model", "fraud", "--dry-run", "--synthetic", "100"],
    "train-data-missing": ["train", "--stack", "dev", "--data", "/nonexistent", "--dry-run"],
    "train-data-uri-bad": ["train", "--stack", "dev", "--data-uri", "http://x/y", "--dry-run"],
    "train-two-sources": ["train", "--stack", "dev", "--data", "/tmp", "--synthetic", "5", "--dry-run"],
    "evaluate-no-job": ["evaluate", "--stack", "dev"],
    "register-reason-empty": ["register", "--stack", "dev", "--job", "j", "--reason", ""],
    "approve-bad-arn": ["approve", "not-an-arn", "--reason", "ok"],
    "approve-arn-wrong-service": ["approve", "arn:aws:s3:::bucket", "--reason", "ok"],
    "approve-no-reason": ["approve", ARN],
    "reject-bad-arn": ["reject", "arn:aws:sagemaker:us-east-1:1:model-package/x/1", "--reason", "no"],
    "promote-no-to": ["promote", ARN],
    "promote-to-unknown": ["promote", ARN, "--to", "qa"],
    "promote-bad-arn": ["promote", "nope", "--to", "dev"],
    "verify-wait-nan": ["verify", "--stack", "dev", "--wait-seconds", "nan"],
    "verify-wait-negative": ["verify", "--stack", "dev", "--wait-seconds", "-1"],
    "verify-wait-inf": ["verify", "--stack", "dev", "--wait-seconds", "inf"],
    "rollback-env-unknown": ["rollback", "--env", "qa"],
    "packages-status-bad": ["packages", "--stack", "dev", "--status", "Maybe"],
    "monitor-since-nan": ["monitor", "--stack", "dev", "--since-hours", "nan"],
    "monitor-since-inf": ["monitor", "--stack", "dev", "--since-hours", "inf"],
    "monitor-since-negative": ["monitor", "--stack", "dev", "--since-hours", "-3"],
    "reproduce-bad-arn": ["reproduce", "nope"],
    "reproduce-tolerance-nan": ["reproduce", ARN, "--tolerance", "nan"],
    "reproduce-tolerance-negative": ["reproduce", ARN, "--tolerance", "-1"],
    "local-no-sub": ["local"],
    "local-up-dev": ["local", "up", "--stack", "dev"],
    "demo-rows-0": ["demo", "--rows", "0"],
    "demo-rows-text": ["demo", "--rows", "lots"],
    "audit-nothing": ["audit"],
    "audit-all-and-stack": ["audit", "--all", "--stack", "dev"],
    "audit-today-impossible": ["audit", "--stack", "dev", "--today", "2026-02-30"],
    "audit-today-garbage": ["audit", "--stack", "dev", "--today", "yesterday"],
    "audit-format-bad": ["audit", "--stack", "dev", "--format", "xml"],
    "audit-state-missing": ["audit", "--state", "/nonexistent.json"],
    "audit-state-dir": ["audit", "--state", "/tmp"],
    "cost-requests-nan": ["cost", "--stack", "dev", "--requests-per-month", "nan"],
    "cost-requests-inf": ["cost", "--stack", "dev", "--requests-per-month", "inf"],
    "cost-requests-negative": ["cost", "--stack", "dev", "--requests-per-month", "-1"],
    "cost-runs-nan": ["cost", "--stack", "dev", "--training-runs", "nan"],
    "cost-no-source": ["cost"],
    "data-check-missing": ["data-check", "/nonexistent"],
    "data-check-min-rows-negative": ["data-check", "/tmp", "--min-rows", "-1"],
    "data-check-fraction-nan": ["data-check", "/tmp", "--min-class-fraction", "nan"],
    "data-check-fraction-2": ["data-check", "/tmp", "--max-duplicate-fraction", "2"],
    "data-check-task-bad": ["data-check", "/tmp", "--label", "y", "--task", "clustering"],
    "drift-threshold-nan": ["drift", "--baseline", "/nonexistent", "--data", "/tmp", "--threshold", "nan"],
    "drift-baseline-missing": ["drift", "--baseline", "/nonexistent", "--data", "/tmp"],
    "model-card-missing": ["model-card", "/nonexistent"],
    "preview-stack-missing": ["preview", "--stack", "/nonexistent/Pulumi.x.yaml"],
    "outputs-file-missing": ["packages", "--stack", "dev", "--outputs", "/nonexistent.json"],
    "outputs-source-bad": ["packages", "--stack", "dev", "--outputs-from", "cloud"],
}

# Refused by a gate (4), not as bad input: a GPU type outside the stack's allowed list.
GATE = {"train-gpu-not-allowed", "train-instance-garbage"}
# Rejected values that are only checked once AWS is reached; here AWS is a closed port (3).
AFTER_AWS = {"register-reason-empty", "promote-to-unknown", "local-up-dev"}


@pytest.fixture(autouse=True)
def _nowhere(monkeypatch, tmp_path):
    """AWS is a closed port: an argument that slipped through would end in exit 3, not 0."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_argument_is_refused(case, capsys):
    code = 4 if case in GATE else 3 if case in AFTER_AWS else 2
    says = {4: "not allowed", 3: "unreachable"}.get(code, "")
    result = run_mlops(capsys, *CASES[case])
    assert_refused(result, code, says)
    if code == 2:
        assert result.err.strip().splitlines()[-1].startswith(("error:", "  - ")), result.err[-500:]


@pytest.mark.parametrize("case", ["train-seed-text", "train-hp-epochs-0", "audit-today-impossible"])
def test_json_gets_the_same_error_document(case, capsys):
    """Every command, every failure: {"ok": false, "error", "errorType", "exitCode"} on stdout."""
    import json

    result = run_mlops(capsys, *CASES[case], "--json")
    document = json.loads(result.out)
    assert document["ok"] is False and document["exitCode"] == result.code == 2
    assert document["errorType"] == "UsageError" and document["error"] in result.err


TABLE_SIZE = len(CASES)
