"""The model registry through boto3: register, describe, approve or reject, find the champion.

A package's CustomerMetadataProperties carry everything the later gates need, so promotion in
another environment reads the package and nothing else: which training job made it (the
idempotency key), whether it passed the gate (or was forced, and why), where its evaluation
report, drift baseline and full lineage record live, and who approved it and why.
SageMaker limits metadata to 50 keys of 128 characters with values of 256: the full lineage
record lives as JSON beside the model (its S3 URI and SHA-256 are here); the short fields of it
are copied here too, so a person sees them in the console, within a budget that leaves room
for the keys approval and rejection add later (SageMaker merges them into the map).

Registration is idempotent on the training job, even when AWS served a CreateModelPackage
whose response was lost: the ClientToken is a hash of the operation and the job (AWS rule
SM-CLIENT-TOKEN), the package is looked up by its job before creating and again after any
failed create, and only then is the create retried.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ci.aws import clients as aws
from ci.errors import NotFoundError, UsageError
from kernel.records import RunRecord
from ml.lineage import metadata_text  # SageMaker's metadata charset: letters, digits, spaces, _.:/=+-@

if TYPE_CHECKING:
    from kernel.stack_outputs import StackOutputs

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
K_MODEL_SHA = "mlops:modelSha256"  # of model.tar.gz (ci/steps/integrity.py)
K_MODEL_FILES_SHA = "mlops:modelFilesSha256"  # of the list of its files' SHA-256 (in the lineage record)
K_PROMOTED_FROM = "mlops:promotedFrom"  # the upstream package a promoted copy was registered from
K_APPROVED_BY = "mlops:approvedBy"
K_APPROVAL_REASON = "mlops:approvalReason"
K_APPROVED_AT = "mlops:approvedAt"
K_REJECTED_BY = "mlops:rejectedBy"
K_REJECTION_REASON = "mlops:rejectionReason"
K_REJECTED_AT = "mlops:rejectedAt"
APPROVAL_KEYS = (K_APPROVED_BY, K_APPROVAL_REASON, K_APPROVED_AT)
REJECTION_KEYS = (K_REJECTED_BY, K_REJECTION_REASON, K_REJECTED_AT)
HP_PREFIX = "lineage:hp."  # console copies of hyperparameters; the lineage JSON holds them all

# AWS rule SM-METADATA-LIMITS (botocore sagemaker service-2: CustomerMetadataMap max 50 entries,
# CustomerMetadataKey 1-128, CustomerMetadataValue 1-256 characters).
MAX_KEYS, MAX_KEY_LEN, MAX_VALUE_LEN = 50, 128, 256
# What registration may use: a package must still take approval's and rejection's keys.
REGISTRATION_MAX_KEYS = MAX_KEYS - len(APPROVAL_KEYS) - len(REJECTION_KEYS)
CREATE_BACKOFF_S = 1.0  # first wait before re-creating after a failed create (doubles, capped)
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


def group_of(outputs: StackOutputs, model: str) -> str:
    """The stack's model package group of `model`: a model the stack does not declare is a usage error."""
    group = outputs.modelPackageGroups.get(model)
    if not group:
        raise UsageError(f"model {model!r} has no package group in stack {outputs.stackName}")
    return group


def champion(sm, group: str) -> Package | None:
    """The newest Approved package of the group: what a candidate must beat."""
    approved = list_packages(sm, group, APPROVED)
    return describe(sm, approved[0]["ModelPackageArn"]) if approved else None


def job_started(run: RunRecord) -> datetime | None:
    """When the run started, a minute early (clock skew): its package cannot be older."""
    try:
        return datetime.fromisoformat(run.startedAt or "") - timedelta(minutes=1)
    except ValueError:
        return None


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


def client_token(operation: str, *parts: str) -> str:
    """An idempotency token for `operation` on `parts` (e.g. the group and the training job).

    AWS rule SM-CLIENT-TOKEN: SageMaker's ClientToken is 1-36 characters of `[a-zA-Z0-9-]`
    (botocore's sagemaker service-2 model). A prefix of the job name is not a token: the jobs of
    a long-named model share their first 36 characters, so a second job's create would be taken
    for a retry of the first. 32 hex digits of SHA-256 are always valid and never shared.
    """
    return hashlib.sha256("\n".join((operation, *parts)).encode()).hexdigest()[:32]


def metadata_key_ok(key: str) -> bool:
    return bool(key) and len(key) <= MAX_KEY_LEN and metadata_text(key) == key


def check_metadata(metadata: dict[str, str], limit: int = MAX_KEYS) -> dict[str, str]:
    """SageMaker's metadata rules, enforced here (AWS rule SM-METADATA-LIMITS): at most 50 keys
    (`limit` is lower at registration), keys 1-128 and values 1-256 characters, both from
    letters, digits, spaces and `_.:/=+-@` (values are cleaned, keys must be). An empty value
    says nothing and SageMaker refuses it (minimum length 1): it is left out."""
    if len(metadata) > limit:
        raise UsageError(
            f"customer metadata has {len(metadata)} keys; at most {limit} allowed "
            f"(SageMaker's limit is {MAX_KEYS}, and approval and rejection each add {len(APPROVAL_KEYS)})"
        )
    out = {}
    for key, value in metadata.items():
        if not metadata_key_ok(key):
            raise UsageError(f"customer metadata key {key!r}: 1-{MAX_KEY_LEN} letters, digits, spaces or _.:/=+-@")
        value = metadata_text(value)
        if len(value) > MAX_VALUE_LEN:
            raise UsageError(f"customer metadata {key!r} is {len(value)} characters; SageMaker allows {MAX_VALUE_LEN}")
        if value:
            out[key] = value
    return out


def with_optional(required: dict[str, str], optional: dict[str, str], limit: int) -> dict[str, str]:
    """`required` plus as many `optional` entries as fit under `limit`, in order; an optional key
    SageMaker would refuse is left out (its value is in the lineage JSON), values are cut to 256."""
    out = dict(required)
    for key, value in optional.items():
        if len(out) >= limit:
            break
        text = metadata_text(value)[:MAX_VALUE_LEN]
        if key not in out and metadata_key_ok(key) and text:
            out[key] = text
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
    optional_metadata: dict[str, str] = field(default_factory=dict)  # copied while there is room
    environment: dict[str, str] = field(default_factory=dict)  # the serving container's (model digest)
    status: str = PENDING  # Approved only for a promoted copy of an Approved package (ci/steps/promotion_copy.py)
    metadata_limit: int = REGISTRATION_MAX_KEYS  # a promoted copy carries its approval keys already


def register(sm, reg: Registration, *, create_client=None) -> tuple[Package, bool]:
    """Create the package as PendingManualApproval; (package, created). Same job twice: one package.

    `create_client` makes the CreateModelPackage calls; give it one without botocore retries
    (see `single_attempt_client`) so every retry of the create is preceded by a lookup: an
    emulator ignores ClientToken, and a retry after a lost response would register twice.
    """
    existing = find_by_training_job(sm, reg.group, reg.training_job, reg.job_started)
    if existing is not None:
        return existing, False
    required = check_metadata({**reg.metadata, K_JOB: reg.training_job}, reg.metadata_limit)
    metadata = with_optional(required, reg.optional_metadata, reg.metadata_limit)
    kwargs: dict[str, Any] = dict(
        ModelPackageGroupName=reg.group,
        ModelPackageDescription=reg.description[:1024],
        InferenceSpecification={
            "Containers": [
                {
                    "Image": reg.image,
                    "ModelDataUrl": reg.model_data_url,
                    **({"Environment": dict(reg.environment)} if reg.environment else {}),
                }
            ],
            "SupportedContentTypes": reg.content_types,
            "SupportedResponseMIMETypes": reg.response_types,
            "SupportedRealtimeInferenceInstanceTypes": reg.realtime_instance_types,
            "SupportedTransformInstanceTypes": reg.realtime_instance_types,
        },
        # an S3Uri must be an s3:// or https:// URI (botocore's model): no report, no ModelQuality entry
        ModelMetrics=(
            {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": reg.evaluation_report_uri}}}
            if reg.evaluation_report_uri
            else {}
        ),
        ModelApprovalStatus=reg.status,
        CustomerMetadataProperties=metadata,
        Domain=reg.domain,
        Task=reg.task,
        ClientToken=client_token("CreateModelPackage", reg.group, reg.training_job),
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
    if not kwargs["ModelMetrics"]:
        del kwargs["ModelMetrics"]
    return _create_once(sm, create_client or sm, reg, kwargs), True


def single_attempt_client(session):
    """A SageMaker client that tries each call once: the caller decides whether a retry is safe."""
    from botocore.config import Config

    return session.client("sagemaker", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _maybe_served(err: BaseException) -> bool:
    """A failure after which the request may have been served (or may be worth another try)."""
    if isinstance(err, (ReadTimeoutError, BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or aws.is_throttling(err)
    return False


def _create_once(sm, create_client, reg: Registration, kwargs: dict[str, Any]) -> Package:
    """Create the package; after a failed create, look for it before creating again."""
    attempts = aws.max_attempts()
    for attempt in range(1, attempts + 1):
        try:
            arn = create_client.create_model_package(**kwargs)["ModelPackageArn"]
            return describe(sm, arn)
        except Exception as err:
            if not _maybe_served(err):
                raise
            found = find_by_training_job(sm, reg.group, reg.training_job, reg.job_started)
            if found is not None:  # the create was served; its response was lost
                return found
            if attempt == attempts:
                raise
            time.sleep(min(CREATE_BACKOFF_S * 2 ** (attempt - 1), 8.0) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


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
    keys = APPROVAL_KEYS if status == APPROVED else REJECTION_KEYS
    metadata.update(zip(keys, (metadata_text(by)[:MAX_VALUE_LEN], metadata_text(reason)[:MAX_VALUE_LEN], now)))
    removed = _make_room(metadata)
    # The full map is sent: SageMaker merges it, moto replaces it; both end the same. Keys made
    # room for are removed by name, which both honour.
    kwargs: dict[str, Any] = {}
    if removed:
        kwargs["CustomerMetadataPropertiesToRemove"] = removed
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=f"{status} by {by}: {reason}"[:1024],
        CustomerMetadataProperties=check_metadata(metadata),
        **kwargs,
    )
    return describe(sm, arn)


def _make_room(metadata: dict[str, str]) -> list[str]:
    """Drop console copies of hyperparameters (the lineage JSON keeps them) until the map fits
    SageMaker's 50 keys; a package registered before the budget existed may hold 50 already."""
    removed: list[str] = []
    for key in sorted((k for k in metadata if k.startswith(HP_PREFIX)), reverse=True):
        if len(metadata) <= MAX_KEYS:
            break
        del metadata[key]
        removed.append(key)
    return removed
