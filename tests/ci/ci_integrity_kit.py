"""A registered model as `mlops register` stores it: archive, lineage record with every file's
SHA-256, and the digests in the package's metadata; without training anything."""

from __future__ import annotations

import hashlib
import json

from ci_registration_kit import a_registration, model_archive

from ci.aws import registry
from ci.steps import integrity

UPSTREAM_BUCKET = "mlops-test-upstream"
FILES = {
    "schema.json": b'{"features": [], "label": "label"}',
    "baseline.json": b'{"features": {}}',
    "lineage.json": b'{"model_files": {}}',
}


def store_model(boto, job: str, files: dict[str, bytes] | None = None) -> tuple[str, dict[str, str]]:
    """(model data URL, the metadata registration records for it) of a model stored in S3."""
    s3 = boto("s3")
    try:
        s3.create_bucket(Bucket=UPSTREAM_BUCKET)
    except s3.exceptions.ClientError:
        pass
    files = files or FILES
    archive = model_archive(files)
    digests = integrity.ModelDigests(
        hashlib.sha256(archive).hexdigest(), {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    )
    record = json.dumps({"trainingJob": job, "model": digests.to_record()}).encode()
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key=f"{job}/output/model.tar.gz", Body=archive)
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key=f"{job}/lineage.json", Body=record)
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key=f"{job}/baseline.json", Body=files.get("baseline.json", b"{}"))
    metadata = {
        registry.K_LINEAGE: f"s3://{UPSTREAM_BUCKET}/{job}/lineage.json",
        registry.K_LINEAGE_SHA: hashlib.sha256(record).hexdigest(),
        registry.K_BASELINE: f"s3://{UPSTREAM_BUCKET}/{job}/baseline.json",
        **integrity.metadata(digests),
    }
    return f"s3://{UPSTREAM_BUCKET}/{job}/output/model.tar.gz", metadata


def make_package(boto, group="churn-dev", job="mlops-dev-churn-1", gate="passed", status=None, model="churn"):
    """A package registered as `mlops register` would, with its model stored; approved or rejected if asked."""
    sm = boto("sagemaker")
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass
    model_data_url, digests = store_model(boto, job)
    package, created = registry.register(
        sm,
        a_registration(
            job,
            group=group,
            model_data_url=model_data_url,
            metadata={registry.K_MODEL: model, registry.K_GATE: gate, registry.K_STACK: "dev", **digests},
            tags={"owner": "test"},
        ),
    )
    assert created
    if status:
        registry.set_status(
            sm, package.arn, status, by="alice", reason="looks good" if status == "Approved" else "bias found"
        )
    return package.arn
