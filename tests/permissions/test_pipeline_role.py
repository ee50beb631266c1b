"""The stack's GitHub (pipeline) role: what CI's commands need and nothing that deploys (defects 3, 5).

Fast checks on single calls; the whole recorded lifecycle is proved in test_pipeline_calls.py.
"""

from __future__ import annotations

import pytest
from permissions_testkit import ENVIRONMENTS, pipeline_role, requests, stack_preview

from kernel.iam_eval import ALLOW, Request
from kernel.permissions import Call

ACCOUNT = "123456789012"
DEV_ARTIFACTS = f"mlops-dev-artifacts-{ACCOUNT}"
LOGS = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"


def denied(stack: str, call: Call) -> list[str]:
    role = pipeline_role(stack)
    return [f"{r.action} on {r.resource}: {role.decide(r)}" for r in requests(call) if role.decide(r) != ALLOW]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_downstream_reads_the_drift_baseline_and_model_data_trained_in_dev(stack):
    """Defect 5: `mlops monitor` in staging/prod reads the baseline beside dev's training output,
    in dev's KMS-encrypted bucket (s3:GetObject + kms:Decrypt on dev's key, matched by alias)."""
    for key in (
        "training-output/mlops-dev-churn-1/baseline.json",
        "training-output/mlops-dev-churn-1/output/model.tar.gz",
    ):
        call = Call("s3", "GetObject", {"Bucket": DEV_ARTIFACTS, "Key": key})
        assert any(r.action == "kms:Decrypt" for r in requests(call))
        assert denied(stack, call) == []
    # ...and nothing else of dev's: its data bucket, or writing there
    assert denied(stack, Call("s3", "GetObject", {"Bucket": f"mlops-dev-data-{ACCOUNT}", "Key": "datasets/x.csv"}))
    assert denied(stack, Call("s3", "PutObject", {"Bucket": DEV_ARTIFACTS, "Key": "training-output/x"}))


def test_dev_reads_no_other_environment_data():
    call = Call("s3", "GetObject", {"Bucket": f"mlops-prod-artifacts-{ACCOUNT}", "Key": "training-output/x"})
    assert denied("dev", call)


def test_ci_follows_its_training_jobs_logs_and_only_its_own_streams():
    """Defect 5: following a job reads CloudWatch Logs (DescribeLogStreams, GetLogEvents, FilterLogEvents)."""
    calls = [
        Call("logs", "FilterLogEvents", {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": "j/"}),
        Call("logs", "DescribeLogStreams", {"logGroupName": "/aws/sagemaker/TrainingJobs"}),
        Call(
            "logs",
            "GetLogEvents",
            {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "mlops-dev-churn-1/algo-1-1"},
        ),
    ]
    for call in calls:
        assert denied("dev", call) == [], call
    other = Call(
        "logs", "GetLogEvents", {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "mlops-prod-churn-1/a"}
    )
    assert denied("dev", other)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("sagemaker:CreateEndpoint", "arn:aws:sagemaker:us-east-1:{a}:endpoint/mlops-{s}-churn"),
        ("sagemaker:CreateModel", "arn:aws:sagemaker:us-east-1:{a}:model/mlops-{s}-churn-1"),
        ("iam:PutRolePolicy", "arn:aws:iam::{a}:role/mlops-{s}-github-deployer"),
        ("iam:UpdateAssumeRolePolicy", "arn:aws:iam::{a}:role/mlops-{s}-github-deployer"),
        ("kms:PutKeyPolicy", "arn:aws:kms:us-east-1:{a}:key/x"),
        ("s3:PutBucketPolicy", "arn:aws:s3:::mlops-{s}-artifacts-{a}"),
    ],
)
def test_the_pipeline_role_cannot_deploy_or_change_itself(stack, action, resource):
    """Defect 3: deploying is the bootstrap's deploy role's duty; the stack's own role keeps pipeline duties."""
    request = Request(action, resource.format(a=ACCOUNT, s=stack), {"aws:RequestedRegion": "us-east-1"})
    assert pipeline_role(stack).decide(request) != ALLOW


def test_training_is_limited_to_the_environments_gpu_types():
    params = {
        "TrainingJobName": "mlops-dev-churn-1",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-sagemaker-execution",
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
        # the guardrails (test_roles.py) demand these of every job
        "EnableNetworkIsolation": True,
        "OutputDataConfig": {"S3OutputPath": "s3://x/", "KmsKeyId": stack_preview("dev").outputs["kmsKeyArn"]},
    }
    assert denied("dev", Call("sagemaker", "CreateTrainingJob", params)) == []
    big = {**params, "ResourceConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1}}
    assert denied("dev", Call("sagemaker", "CreateTrainingJob", big)) == [
        "sagemaker:CreateTrainingJob on arn:aws:sagemaker:us-east-1:123456789012:training-job/mlops-dev-churn-1: "
        "ExplicitDeny"  # GuardAllowedInstanceTypes (the Allow's ForAllValues condition alone would deny implicitly)
    ]
    other_role = {**params, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker-execution"}
    assert any(d.startswith("iam:PassRole") for d in denied("dev", Call("sagemaker", "CreateTrainingJob", other_role)))
