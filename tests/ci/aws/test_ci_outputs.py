"""Stack outputs: one typed object from a file, stdin, the preview or the local backend."""

from __future__ import annotations

import io
import json

import pytest

from ci.aws.outputs import parse_outputs, read_outputs_file, resolve_outputs
from ci.errors import MlopsError, UnknownStackError, UsageError
from kernel.stack_outputs import OUTPUT_KEYS

OUTPUTS = {
    "stackName": "dev",
    "environment": "dev",
    "region": "us-east-1",
    "accountId": "123456789012",
    "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc",
    "dataBucket": "mlops-dev-data-123456789012",
    "artifactBucket": "mlops-dev-artifacts-123456789012",
    "captureBucket": "mlops-dev-capture-123456789012",
    "accessLogBucket": "mlops-dev-access-logs-123456789012",
    "executionRoleArn": "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-execution",
    "modelPackageGroups": {"churn": "churn-dev"},
    "ecrRepositoryUrl": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev",
    "alertTopicArn": "arn:aws:sns:us-east-1:123456789012:mlops-dev-alerts",
    "endpoints": {},
    "approvedPackages": {"churn": ""},
    "trainingDefaults": {
        "allowedInstanceTypes": ["ml.g5.xlarge"],
        "defaultInstanceType": "ml.g5.xlarge",
        "useSpot": True,
        "maxRuntimeSeconds": 7200.0,
        "maxWaitSeconds": 14400.0,
        "checkpointS3Uri": "s3://mlops-dev-artifacts-123456789012/checkpoints/",
        "outputS3Uri": "s3://mlops-dev-artifacts-123456789012/training-output/",
        "volumeKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc",
        "vpc": {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]},
        "jobNamePrefix": "mlops-dev",
    },
    "monitoring": {
        "driftNamespace": "MLOps/Drift",
        "driftMetricName": "DriftScore",
        "driftThreshold": 0.25,
        "dashboardName": "mlops-dev",
        "logGroupName": "/mlops/dev/pipeline",
        "driftDimensions": {"churn": {"EndpointName": "mlops-dev-churn"}},
    },
    "deployerRoleArn": "arn:aws:iam::123456789012:role/mlops-dev-github-deployer",
}


def test_hand_written_outputs_parse_into_the_typed_object(tmp_path):
    path = tmp_path / "out.json"
    path.write_text(json.dumps(OUTPUTS))
    outputs = read_outputs_file(str(path))
    assert outputs.trainingDefaults.maxRuntimeSeconds == 7200 and isinstance(
        outputs.trainingDefaults.maxRuntimeSeconds, int
    )
    assert outputs.trainingDefaults.vpc["subnetIds"] == ["subnet-0123456789abcdef0"]
    assert outputs.monitoring.driftDimensions["churn"] == {"EndpointName": "mlops-dev-churn"}
    assert outputs.modelPackageGroups == {"churn": "churn-dev"}


def test_outputs_read_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OUTPUTS)))
    assert read_outputs_file("-").dataBucket == OUTPUTS["dataBucket"]


@pytest.mark.parametrize("key", ["dataBucket", "trainingDefaults", "alertTopicArn"])
def test_a_missing_output_is_named(key):
    raw = {k: v for k, v in OUTPUTS.items() if k != key}
    with pytest.raises(MlopsError, match=key):
        parse_outputs(raw, "test.json")


def test_a_missing_nested_output_is_named():
    raw = json.loads(json.dumps(OUTPUTS))
    del raw["trainingDefaults"]["outputS3Uri"]
    with pytest.raises(MlopsError, match=r"TrainingDefaults\.outputS3Uri"):
        parse_outputs(raw, "test.json")


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("Current stack outputs (3):")
    with pytest.raises(UsageError, match=r"not JSON.*pulumi stack output --json"):
        read_outputs_file(str(path))


def test_outputs_of_another_stack_are_refused(tmp_path, stacks):
    path = tmp_path / "out.json"
    path.write_text(json.dumps(OUTPUTS))
    with pytest.raises(UsageError, match="belong to stack 'dev', not 'prod'"):
        resolve_outputs("prod", outputs_file=str(path))


def test_unknown_stack_lists_the_known_ones(stacks):
    with pytest.raises(UnknownStackError, match=r"unknown stack 'qa'.*dev, local, prod, staging"):
        resolve_outputs("qa")


def test_preview_gives_every_contract_key(stacks, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no Pulumi CLI
    resolved = resolve_outputs("staging")
    assert resolved.source == "preview"
    outputs = resolved.outputs
    assert outputs.stackName == "staging"
    assert outputs.dataBucket == "mlops-staging-data-123456789012"
    assert outputs.modelPackageGroups == {"churn": "churn-staging"}
    assert set(OUTPUT_KEYS) <= set(type(outputs).model_fields)


def test_local_source_without_state_says_how_to_make_it(stacks, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "nothing"))
    with pytest.raises(MlopsError, match="mlops local up --stack local"):
        resolve_outputs("local", source="local")


def test_cli_unknown_stack_exits_2_without_traceback(stacks, mlops):
    result = mlops("packages", "--stack", "qa", "--json")
    assert result.code == 2
    assert "unknown stack 'qa'" in result.err and "Traceback" not in result.err
    assert result.json == {"ok": False, "error": result.json["error"], "errorType": "UnknownStackError", "exitCode": 2}


def test_the_pulumi_cli_is_asked_when_it_is_there(stacks, monkeypatch, tmp_path):
    """With `pulumi` on PATH (and no emulator), a deployed stack's outputs win over the preview."""
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\ncat <<'EOF'\n{json.dumps(OUTPUTS)}\nEOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    resolved = resolve_outputs("dev")
    assert resolved.source == "pulumi" and resolved.outputs.trainingDefaults.vpc["subnetIds"] == [
        "subnet-0123456789abcdef0"
    ]
    assert log.read_text().split() == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert resolve_outputs("dev").source == "preview"  # an emulator run never reads the deployed stack
