"""Promotion's copy: the model moves into the target environment's own bucket and registry.

A package promoted out of the environment that trained it would otherwise point at that
environment's artifact bucket, under a key its CI role may overwrite. So promotion downloads
the archive, checks it against the digests registration recorded (ci/steps/integrity.py), and writes
it, its lineage record and its drift baseline into the target's artifact bucket under
`promoted/<model>/<archive SHA-256>/`, each with `If-None-Match: *` (AWS rule
S3-CONDITIONAL-WRITE): the bucket policy (infra/storage.py) denies any other write or delete
there, so an object in that prefix never changes once written. The copy is registered in the
target's model package group, Approved, with the same lineage (the same record, byte for
byte, so the same `mlops:lineageSha256`) and `mlops:promotedFrom` naming the upstream package.

Idempotent: the target's package for the same training job is found and reused when its
archive digest matches; an object already in the prefix is reused when it hashes as expected.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ci.aws import registry
from ci.aws import s3 as s3util
from ci.errors import RefusedError
from ci.progress import QUIET, Progress
from ci.steps import integrity
from ci.steps.container import unpack_model
from infra.storage import PROMOTED_PREFIX  # the artifact bucket's write-once prefix
from kernel.stack_outputs import StackOutputs


def promoted_prefix(model: str, archive_sha256: str) -> str:
    return f"{PROMOTED_PREFIX}{model}/{archive_sha256}/"


def existing_copy(sm, group: str, package: registry.Package) -> registry.Package | None:
    """The target group's package of the same training job; refused if its model differs."""
    found = registry.find_by_training_job(sm, group, package.training_job)
    if found is None:
        return None
    theirs, ours = found.metadata.get(registry.K_MODEL_SHA), package.metadata.get(registry.K_MODEL_SHA)
    if theirs != ours:
        raise RefusedError(
            f"{group} already holds {found.arn} from training job {package.training_job} with a different model "
            f"(SHA-256 {theirs}, upstream {ours})"
        )
    return found


def _require_target(sm, s3, target: StackOutputs, group: str) -> None:
    """The target's bucket and package group exist: its stack is up. Checked before any write."""
    try:
        s3.head_bucket(Bucket=target.artifactBucket)
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as err:
        raise RefusedError(
            f"cannot copy the model into {target.stackName}: its artifact bucket {target.artifactBucket} or package "
            f"group {group} does not exist ({err.response.get('Error', {}).get('Code')}); bring the stack up first "
            f"(`pulumi up --stack {target.stackName}`, or `mlops local up --stack {target.stackName}`)"
        ) from err


def write_once(s3, uri: str, data: bytes, content_type: str, kms_key: str | None) -> None:
    """PutObject with If-None-Match: * (the bucket policy refuses it without); an object that is
    there already must hold exactly these bytes."""
    bucket, key = s3util.split_uri(uri)
    extra: dict[str, Any] = {"ContentType": content_type, "Metadata": {s3util.SHA_META: s3util.sha256_bytes(data)}}
    if kms_key:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", **extra)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        there = s3util.get_bytes(s3, uri)
        if there != data:
            raise RefusedError(
                f"{uri} exists with SHA-256 {s3util.sha256_bytes(there)}, not {s3util.sha256_bytes(data)}; "
                "a write-once object is never replaced"
            ) from err


def copy_to_target(
    session, package: registry.Package, target: StackOutputs, model: str, progress: Progress = QUIET
) -> registry.Package:
    """The target environment's own package of `package`'s model: found, or copied and registered."""
    sm, s3 = session.client("sagemaker"), session.client("s3")
    group = target.modelPackageGroups.get(model)
    if not group:
        raise RefusedError(f"stack {target.stackName} has no model package group for {model!r}")
    if package.group == group:
        return package  # already the target's own
    _require_target(sm, s3, target, group)
    found = existing_copy(sm, group, package)
    if found is not None:
        progress.info(f"{target.stackName} already holds this model as {found.arn}")
        return found
    expected = integrity.recorded(s3, package)
    prefix = f"s3://{target.artifactBucket}/{promoted_prefix(model, expected.archive_sha256)}"
    with tempfile.TemporaryDirectory(prefix="mlops-promote-") as work:
        archive = Path(work) / "model.tar.gz"
        s3util.download(s3, package.model_data_url, archive)
        where = f"the lineage record of {package.arn}"
        unpack_model(archive, Path(work) / "model", verify=lambda d: integrity.verify(archive, d, expected, where))
        progress.step(f"copying {package.model_data_url} to {prefix} (write-once)")
        write_once(s3, prefix + "model.tar.gz", archive.read_bytes(), "application/gzip", target.kmsKeyArn)
    copied = {registry.K_LINEAGE: prefix + "lineage.json"}
    write_once(
        s3,
        copied[registry.K_LINEAGE],
        s3util.get_bytes(s3, package.metadata[registry.K_LINEAGE]),
        "application/json",
        target.kmsKeyArn,
    )
    if package.metadata.get(registry.K_BASELINE):
        copied[registry.K_BASELINE] = prefix + "baseline.json"
        baseline = s3util.get_bytes(s3, package.metadata[registry.K_BASELINE])
        write_once(s3, copied[registry.K_BASELINE], baseline, "application/json", target.kmsKeyArn)
    return _register_copy(session, package, group, prefix + "model.tar.gz", copied, progress)


def _register_copy(
    session, package, group: str, model_data_url: str, copied: dict[str, str], progress
) -> registry.Package:
    sm = session.client("sagemaker")
    raw = sm.describe_model_package(ModelPackageName=package.arn)
    spec = raw.get("InferenceSpecification") or {}
    container = (spec.get("Containers") or [{}])[0]
    kept = {k: v for k, v in package.metadata.items() if not k.startswith(registry.HP_PREFIX)}
    kept = {k: v for k, v in kept.items() if k not in registry.REJECTION_KEYS}
    required = {**kept, **copied, registry.K_PROMOTED_FROM: package.arn}
    optional = {k: v for k, v in package.metadata.items() if k.startswith(registry.HP_PREFIX)}
    created, _ = registry.register(
        sm,
        registry.Registration(
            group=group,
            training_job=package.training_job,
            model_data_url=model_data_url,
            image=package.image,
            content_types=spec.get("SupportedContentTypes") or [],
            response_types=spec.get("SupportedResponseMIMETypes") or [],
            realtime_instance_types=spec.get("SupportedRealtimeInferenceInstanceTypes") or [],
            evaluation_report_uri=package.metadata.get(registry.K_REPORT, ""),
            metadata=required,
            description=f"promoted from {package.arn}",
            tags={"mlops:model": package.model, "mlops:promotedFrom": package.arn.rsplit("/", 2)[-2]},
            domain=raw.get("Domain") or "MACHINE_LEARNING",
            task=raw.get("Task") or "CLASSIFICATION",
            optional_metadata=optional,
            environment=dict(container.get("Environment") or {}),
            status=registry.APPROVED,
            metadata_limit=registry.MAX_KEYS - len(registry.REJECTION_KEYS),
        ),
        create_client=registry.single_attempt_client(session),
    )
    progress.step(f"registered {created.arn} in {group}, promoted from {package.arn}")
    return created
