"""Pipeline overheads, each against its baseline in the same run (moto in-process, no network).

1. AWS sessions: `ci.aws.clients.make_session` (one botocore loader shared by the process) + 5 clients,
   against a fresh boto3 session per command (baseline: service models parsed again every time).
2. Registration's idempotency lookup in a group of N packages: bounded by the run's start time
   (`CreationTimeAfter`: only packages newer than the job are described), against describing
   every package of the group (baseline).

Run: .venv/bin/python bench/bench_pipeline.py
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws
from timing import median_seconds

from ci.aws import clients as aws
from ci.aws import registry

SERVICES = ("s3", "sagemaker", "sns", "cloudwatch", "logs")


def sessions() -> tuple[float, float]:
    def fresh():
        session = boto3.session.Session(region_name="us-east-1")
        for name in SERVICES:
            session.client(name)

    def shared():
        session = aws.make_session("us-east-1")
        for name in SERVICES:
            session.client(name)

    shared()  # first use parses the models once for the process
    return median_seconds(fresh, 7), median_seconds(shared, 7)


def idempotency(n: int) -> tuple[float, float]:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName="churn-dev")
        for i in range(n):
            sm.create_model_package(
                ModelPackageGroupName="churn-dev",
                ModelApprovalStatus="PendingManualApproval",
                InferenceSpecification={
                    "Containers": [{"Image": "x", "ModelDataUrl": f"s3://b/{i}"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
                CustomerMetadataProperties={registry.K_JOB: f"job-{i}"},
            )
        time.sleep(1.1)  # the job starts after the earlier packages (moto keeps whole-second order)
        started = datetime.now(UTC)
        sm.create_model_package(
            ModelPackageGroupName="churn-dev",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "x", "ModelDataUrl": "s3://b/new"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={registry.K_JOB: "job-new"},
        )
        # the lookup that misses (a new job, not registered yet) is the one every registration pays
        full = median_seconds(lambda: registry.find_by_training_job(sm, "churn-dev", "job-unregistered"), 3)
        bounded = median_seconds(lambda: registry.find_by_training_job(sm, "churn-dev", "job-unregistered", started), 3)
        assert registry.find_by_training_job(sm, "churn-dev", "job-new", started) is not None
        return full, bounded


def main() -> None:
    rows = []
    fresh, shared = sessions()
    rows.append(("session + 5 clients", "fresh boto3 session", fresh, "shared loader (ci.aws.clients)", shared))
    for n in (10, 100, 300):
        full, bounded = idempotency(n)
        rows.append(
            (f"idempotency lookup, {n} packages", "describe every package", full, "created after job start", bounded)
        )
    print(f"{'case':<34} {'baseline':<24} {'ms':>9}   {'ours':<24} {'ms':>9}   {'speed-up':>8}")
    for case, base_name, base, ours_name, ours in rows:
        print(
            f"{case:<34} {base_name:<24} {base * 1000:9.1f}   {ours_name:<24} {ours * 1000:9.1f}   {base / ours:7.1f}x"
        )


if __name__ == "__main__":
    main()
