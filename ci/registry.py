"""The model registry through boto3: register, describe, approve or reject, find the champion.

A package's CustomerMetadataProperties carry everything the later gates need, so promotion in
another environment reads the package and nothing else: which training job made it (the
idempotency key), whether it passed the gate (or was forced, and why), where its evaluation
report, drift baseline and full lineage record live, and who approved it and why.
SageMaker limits metadata to 50 keys of 128 characters with values of 256: the full lineage
record lives as JSON beside the model (its S3 URI and SHA-256 are here); the short fields of it
are copied here too, so a person sees them in the console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ci.errors import NotFoundError, UsageError
from ml.lineage import metadata_text  # SageMaker's metadata charset: letters, digits, spaces, _.:/=+-@

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
STATUSES = (APPROVED, PENDING, REJECTED)

# Metadata keys (the contract between register, approve, promote, monitor and reproduce).
K_MODEL = "mlops:model"
K_JOB = "mlops:trainingJob"
K_STACK = "mlops:stack"
K_GATE = "mlops:gate"  # passed | failed | forced
K_GATE_REASON = "mlops:gateReason"
K_FORCE_REASON = "mlops:forceReason"
K_REPORT = "mlops:evaluationReport"
K_BASELINE = "mlops:baseline"
K_LINEAGE = "mlops:lineage"
K_LINEAGE_SHA = "mlops:lineageSha256"
K_APPROVED_BY = "mlops:approvedBy"
K_APPROVAL_REASON = "mlops:approvalReason"
K_APPROVED_AT = "mlops:approvedAt"
K_REJECTED_BY = "mlops:rejectedBy"
K_REJECTION_REASON = "mlops:rejectionReason"
K_REJECTED_AT = "mlops:rejectedAt"

MAX_KEYS, MAX_KEY_LEN, MAX_VALUE_LEN = 50, 128, 256
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/([A-Za-z0-9-]{1,63})/(\d+)$")


@dataclass(frozen=True)
class Package:
    arn: str
    group: str
    version: int
    status: str
    approval_description: str
    metadata: dict[str, str]
    model_data_url: str
    image: str
    created: datetime | None
    model_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.metadata.get(K_MODEL, "")

    @property
    def training_job(self) -> str:
        return self.metadata.get(K_JOB, "")

    @property
    def gate(self) -> str:
        return self.metadata.get(K_GATE, "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "group": self.group,
            "version": self.version,
            "status": self.status,
            "approvalDescription": self.approval_description,
            "model": self.model,
            "trainingJob": self.training_job,
            "gate": self.gate,
            "modelDataUrl": self.model_data_url,
            "image": self.image,
            "created": self.created.isoformat() if self.created else None,
            "metadata": dict(self.metadata),
        }


def check_package_arn(arn: str) -> None:
    if not PACKAGE_ARN.match(arn or ""):
        raise UsageError(
            f"{arn!r} is not a versioned model package ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )


def describe(sm, arn: str) -> Package:
    """The package, or NotFoundError naming it."""
    check_package_arn(arn)
    try:
        raw = sm.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException"):
            raise NotFoundError(f"model package {arn} does not exist in the registry") from err
        raise
    return _package(raw)


def _package(raw: dict[str, Any]) -> Package:
    containers = (raw.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return Package(
        arn=raw["ModelPackageArn"],
        group=raw.get("ModelPackageGroupName", ""),
        version=int(raw.get("ModelPackageVersion") or 0),
        status=raw.get("ModelApprovalStatus", ""),
        approval_description=raw.get("ApprovalDescription") or "",
        metadata=dict(raw.get("CustomerMetadataProperties") or {}),
        model_data_url=containers[0].get("ModelDataUrl", ""),
        image=containers[0].get("Image", ""),
        created=raw.get("CreationTime"),
        model_metrics=raw.get("ModelMetrics") or {},
    )


def list_packages(
    sm, group: str, status: str | None = None, created_after: datetime | None = None
) -> list[dict[str, Any]]:
    """Summaries of a group's packages, newest first (only those created after `created_after`)."""
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        kwargs["ModelApprovalStatus"] = status
    if created_after is not None:
        kwargs["CreationTimeAfter"] = created_after
    out: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_model_packages").paginate(**kwargs):
        out.extend(page.get("ModelPackageSummaryList", []))
    out.sort(
        key=lambda s: (
            s.get("CreationTime") or datetime.min.replace(tzinfo=UTC),
            s.get("ModelPackageVersion", 0),
        ),
        reverse=True,
    )
    return out


def champion(sm, group: str) -> Package | None:
    """The newest Approved package of the group: what a candidate must beat."""
    approved = list_packages(sm, group, APPROVED)
    return describe(sm, approved[0]["ModelPackageArn"]) if approved else None


def find_by_training_job(sm, group: str, job_name: str, created_after: datetime | None = None) -> Package | None:
    """The package registered from this training job, if any (registration is idempotent on it).

    A package of job J was created after J started: given that time, only those are described,
    so the check stays a few calls however many packages the group holds.
    """
    for summary in list_packages(sm, group, created_after=created_after):
        package = describe(sm, summary["ModelPackageArn"])
        if package.training_job == job_name:
            return package
    return None


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """SageMaker's metadata rules, enforced here: at most 50 keys, keys 1-128 and values up to 256
    characters, both from letters, digits, spaces and `_.:/=+-@` (values are cleaned, keys must be)."""
    if len(metadata) > MAX_KEYS:
        raise UsageError(f"customer metadata has {len(metadata)} keys; SageMaker allows {MAX_KEYS}")
    out = {}
    for key, value in metadata.items():
        if not key or len(key) > MAX_KEY_LEN or metadata_text(key) != key:
            raise UsageError(f"customer metadata key {key!r}: 1-{MAX_KEY_LEN} letters, digits, spaces or _.:/=+-@")
        value = metadata_text(value)
        if len(value) > MAX_VALUE_LEN:
            raise UsageError(f"customer metadata {key!r} is {len(value)} characters; SageMaker allows {MAX_VALUE_LEN}")
        out[key] = value
    return out


@dataclass(frozen=True)
class Registration:
    group: str
    training_job: str
    model_data_url: str
    image: str
    content_types: list[str]
    response_types: list[str]
    realtime_instance_types: list[str]
    evaluation_report_uri: str
    metadata: dict[str, str]
    description: str
    tags: dict[str, str]
    domain: str = "MACHINE_LEARNING"
    task: str = "CLASSIFICATION"
    job_started: datetime | None = None  # bounds the idempotency lookup


def register(sm, reg: Registration) -> tuple[Package, bool]:
    """Create the package as PendingManualApproval; (package, created). Same job twice: one package."""
    existing = find_by_training_job(sm, reg.group, reg.training_job, reg.job_started)
    if existing is not None:
        return existing, False
    metadata = check_metadata({**reg.metadata, K_JOB: reg.training_job})
    kwargs: dict[str, Any] = dict(
        ModelPackageGroupName=reg.group,
        ModelPackageDescription=reg.description[:1024],
        InferenceSpecification={
            "Containers": [{"Image": reg.image, "ModelDataUrl": reg.model_data_url}],
            "SupportedContentTypes": reg.content_types,
            "SupportedResponseMIMETypes": reg.response_types,
            "SupportedRealtimeInferenceInstanceTypes": reg.realtime_instance_types,
            "SupportedTransformInstanceTypes": reg.realtime_instance_types,
        },
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": reg.evaluation_report_uri}},
        },
        ModelApprovalStatus=PENDING,
        CustomerMetadataProperties=metadata,
        Domain=reg.domain,
        Task=reg.task,
        ClientToken=reg.training_job[:36],
        Tags=[{"Key": k, "Value": v} for k, v in reg.tags.items()],
    )
    baseline = metadata.get(K_BASELINE)
    if baseline:
        kwargs["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": baseline}}
        }
        kwargs["ModelMetrics"]["ModelDataQuality"] = {
            "Statistics": {"ContentType": "application/json", "S3Uri": baseline}
        }
    arn = sm.create_model_package(**kwargs)["ModelPackageArn"]
    return describe(sm, arn), True


def set_status(sm, arn: str, status: str, *, by: str, reason: str) -> Package:
    """Approve or reject, recording who and why (in ApprovalDescription and in metadata)."""
    if status not in (APPROVED, REJECTED):
        raise UsageError(f"status must be {APPROVED} or {REJECTED}, got {status!r}")
    if not reason.strip():
        raise UsageError("--reason is required: say why, it is recorded on the package")
    if not by.strip():
        raise UsageError("--by is required: who decides is recorded on the package")
    package = describe(sm, arn)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    metadata = dict(package.metadata)
    if status == APPROVED:
        metadata.update({K_APPROVED_BY: by, K_APPROVAL_REASON: reason, K_APPROVED_AT: now})
    else:
        metadata.update({K_REJECTED_BY: by, K_REJECTION_REASON: reason, K_REJECTED_AT: now})
    # The full map is sent: SageMaker merges it, moto replaces it; both end the same.
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=f"{status} by {by}: {reason}"[:1024],
        CustomerMetadataProperties=check_metadata(metadata),
    )
    return describe(sm, arn)
