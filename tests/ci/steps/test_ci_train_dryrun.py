"""`mlops train --dry-run`: the exact CreateTrainingJob request the sagemaker SDK builds, offline.

The request is the SDK's own (ModelTrainer against a session whose calls are answered in
process); no socket is opened, nothing is uploaded.
"""

from __future__ import annotations

import pytest
import yaml
from ci_testkit import DATA_URI


def dry_run(mlops, stack, instance_type, *data):
    result = mlops(
        "train",
        "--stack",
        stack,
        "--outputs-from",
        "preview",
        *(data or ("--data-uri", DATA_URI)),
        "--instance-type",
        instance_type,
        "--dry-run",
        "--json",
    )
    assert result.code == 0, result
    return result.json


def test_nvme_type_gets_an_output_key_and_no_volume_key(offline, stacks, mlops):
    """AWS rule: INSTANCE-STORAGE. ml.g5.xlarge has local NVMe storage: AWS refuses ResourceConfig.VolumeKmsKeyId."""
    out = dry_run(mlops, "dev", "ml.g5.xlarge")
    request = out["request"]
    assert request["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert request["OutputDataConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
    # the SDK's own request: its job name, its code channel, our data channels as named
    assert request["TrainingJobName"].startswith("mlops-dev-churn-")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels["train"] == DATA_URI + "train/" and channels["validation"] == DATA_URI + "validation/"
    assert "code" in channels
    assert request["EnableNetworkIsolation"] is True
    assert out["sdkCalls"]["sagemaker:CreateTrainingJob"] == 1
    assert out["dataUploads"] == [] and out["problems"] == []


def test_type_without_instance_storage_gets_both_keys(offline, stacks, mlops):
    """AWS rule: INSTANCE-STORAGE. ml.p3.2xlarge has an EBS volume: its volume key is sent, and the output key."""
    path = stacks / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["mlops:training"]["allowedInstanceTypes"].append("ml.p3.2xlarge")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    request = dry_run(mlops, "staging", "ml.p3.2xlarge")["request"]
    key = request["OutputDataConfig"]["KmsKeyId"]
    assert key.startswith("arn:aws:kms:")
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == key


def test_a_local_folder_is_not_uploaded_but_listed(offline, stacks, mlops, tmp_path):
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.csv").write_text("a,label\n1,0\n")
    out = dry_run(mlops, "dev", "ml.g5.xlarge", "--data", str(tmp_path))
    targets = sorted(u["to"] for u in out["dataUploads"])
    assert len(targets) == 3 and all(t.startswith("s3://mlops-dev-data-") for t in targets)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in out["request"]["InputDataConfig"]}
    assert channels["train"] == targets[1].rsplit("/", 1)[0] + "/"  # the prefix upload would write


def test_readable_without_json_and_latest_data_refused(offline, stacks, mlops):
    text = mlops("train", "--stack", "dev", "--outputs-from", "preview", "--data-uri", DATA_URI, "--dry-run")
    assert text.code == 0, text
    assert "nothing was sent to AWS" in text.out and '"CreateTrainingJob"' not in text.out
    assert '"ResourceConfig"' in text.out
    refused = mlops("train", "--stack", "dev", "--outputs-from", "preview", "--latest-data", "--dry-run")
    assert refused.code == 2 and "--latest-data" in refused.err


def test_the_request_passes_the_aws_model_checks(offline, stacks, mlops):
    aws_model = pytest.importorskip("kernel.aws_model")
    request = dry_run(mlops, "dev", "ml.g5.xlarge")["request"]
    assert [p.message for p in aws_model.validate_request("sagemaker", "CreateTrainingJob", request)] == []


def test_a_request_aws_would_refuse_fails_the_dry_run():
    from ci.commands.train import _dry_run_result
    from ci.errors import UsageError

    built = {"request": {}, "problems": ["ResourceConfig.VolumeSizeInGB: 0 is not valid; range 1-"], "dataUploads": []}
    with pytest.raises(UsageError, match="AWS would refuse this CreateTrainingJob request: ResourceConfig"):
        _dry_run_result({**built, "codeUploads": []})


def test_botocore_model_violations_are_a_usage_error_not_a_traceback(offline, stacks, mlops, monkeypatch):
    import dataclasses

    from ci.steps import training

    real = training.plan_job
    monkeypatch.setattr(  # botocore's model: MaxRuntimeInSeconds is at least 1
        training, "plan_job", lambda *a, **k: dataclasses.replace(real(*a, **k), max_runtime_seconds=-5)
    )
    result = mlops("train", "--stack", "dev", "--outputs-from", "preview", "--data-uri", DATA_URI, "--dry-run")
    assert result.code == 2, result
    assert "AWS would refuse this CreateTrainingJob request" in result.err and "MaxRuntimeInSeconds" in result.err
    assert "Traceback" not in result.err
