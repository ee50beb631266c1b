"""A trained, evaluated, gated run of the dev stack, laid out in the emulator without training.

`mlops register` reads a run record, an evaluation report and a model archive from S3; these
helpers write exactly those (as `mlops train` and `mlops evaluate` would) so that registration
can be exercised in a fraction of a second, many times over.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime

from ci.aws import registry

BUCKET = "mlops-dev-artifacts-123456789012"  # the dev stack's artifact bucket (offline preview)
GROUP = "churn-dev"


def a_registration(
    job: str, *, bucket: str = "b", model: str = "churn", gate: str = "passed", **changes
) -> registry.Registration:
    """A dev-stack registration of `job`, with the fields `mlops register` fills; `changes` replace fields."""
    fields = dict(
        group=GROUP,
        training_job=job,
        model_data_url=f"s3://{bucket}/{job}/output/model.tar.gz",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev:abc",
        content_types=["text/csv"],
        response_types=["application/json"],
        realtime_instance_types=["ml.m5.large"],
        evaluation_report_uri=f"s3://{bucket}/evaluations/{job}/evaluation.json",
        metadata={registry.K_MODEL: model, registry.K_GATE: gate, registry.K_STACK: "dev"},
        description="test",
        tags={},
    )
    return registry.Registration(**{**fields, **changes})


def model_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def arrange_dev(boto) -> None:
    """The dev stack's bucket and package group (what `mlops local up` would create, minus the rest)."""
    boto("s3").create_bucket(Bucket=BUCKET)
    boto("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)


def arrange_run(boto, job: str, hyperparameters: dict[str, str] | None = None) -> dict:
    """A Completed run of `job` whose gate passed; returns its run record."""
    s3 = boto("s3")
    prefix = f"training-output/{job}"
    archive = model_archive(
        {
            "schema.json": b'{"features": [], "label": "label"}',
            "baseline.json": b'{"features": {}}',
            "lineage.json": json.dumps({"libraries": {"torch": "2"}, "seed": 1}).encode(),
        }
    )
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/output/model.tar.gz", Body=archive)
    run = {
        "job": job,
        "mode": "local",
        "model": "churn",
        "stack": "dev",
        "status": "Completed",
        "failureReason": "",
        "modelDataUrl": f"s3://{BUCKET}/{prefix}/output/model.tar.gz",
        "hyperparameters": hyperparameters or {"model": "gbdt"},
        "seed": 1,
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "dataset": {"uri": f"s3://{BUCKET}/data/churn/", "sha256": "ab" * 32},
        "metrics": {"roc_auc": 0.8},
        "startedAt": datetime.now(UTC).isoformat(),
    }
    s3.put_object(Bucket=BUCKET, Key=f"runs/{job}/run.json", Body=json.dumps(run).encode())
    report = {"gate": {"passed": True, "reason": "roc_auc 0.80 >= 0.70"}, "candidate": {"metrics": {"roc_auc": 0.8}}}
    s3.put_object(Bucket=BUCKET, Key=f"evaluations/{job}/evaluation.json", Body=json.dumps(report).encode())
    return run


def packages_of(boto, job: str | None = None, group: str = GROUP) -> list[dict]:
    """Every package of the group (described), or those registered from `job`."""
    sm = boto("sagemaker")
    out = []
    for summary in sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]:
        described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if job is None or (described.get("CustomerMetadataProperties") or {}).get("mlops:trainingJob") == job:
            out.append(described)
    return out


def s3_state(boto, bucket: str = BUCKET) -> dict[str, bytes]:
    s3 = boto("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}
