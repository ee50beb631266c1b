"""The stack outputs contract: what every stack exports, and the one typed object that reads it.

`infra/__main__.py` exports exactly these keys (camelCase, as `pulumi stack output --json`
prints them); `ci/` reads them back with `StackOutputs.from_dict`, whether they come from the
Pulumi CLI, the offline preview, or the local backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# key -> what it is (documented in docs/architecture.md)
OUTPUT_KEYS: dict[str, str] = {
    "stackName": "the Pulumi stack (environment) name: dev, staging, prod or local",
    "environment": "the environment tier this stack is (dev, staging, prod, local)",
    "region": "AWS region of every resource",
    "accountId": "AWS account id the stack runs in",
    "kmsKeyArn": "ARN of the customer-managed KMS key that encrypts data, artifacts, capture, topics and logs",
    "dataBucket": "bucket for training data sets (versioned; object versions are recorded in lineage)",
    "artifactBucket": "bucket for model artifacts, checkpoints, evaluation reports and lineage",
    "captureBucket": "bucket where endpoints write captured requests and responses",
    "accessLogBucket": "bucket receiving S3 server access logs of the three buckets above",
    "executionRoleArn": "SageMaker execution role for training jobs and models of this environment",
    "modelPackageGroups": "model name -> SageMaker model package group name",
    "ecrRepositoryUrl": "ECR repository URL for this environment's inference/training images",
    "alertTopicArn": "SNS topic that alarms, drift notifications and budgets publish to",
    "endpoints": "model name -> endpoint name (only models with an approved package in this stack)",
    "approvedPackages": "model name -> approved model package ARN deployed by this stack ('' when none)",
    "trainingDefaults": "allowedInstanceTypes, defaultInstanceType, useSpot, maxRuntimeSeconds, maxWaitSeconds, "
    "checkpointS3Uri, outputS3Uri, volumeKmsKeyArn, vpc (subnetIds, securityGroupIds), jobNamePrefix",
    "monitoring": "driftNamespace, driftMetricName, driftDimensions (model -> dimensions), driftThreshold, "
    "dashboardName, logGroupName",
    "deployerRoleArn": "the pipeline role GitHub Actions assumes (OIDC): train, register, promote; never approves",
    "pipelineRoleArn": "the same pipeline role, by its duty's name",
    "approverRoleArn": "the approver role: sets model packages' approval status, from approve.yml only",
    "monitorRoleArn": "the monitor role: reads captures and baselines, publishes drift, notifies; from drift.yml only",
}


@dataclass(frozen=True)
class TrainingDefaults:
    allowedInstanceTypes: list[str]
    defaultInstanceType: str
    useSpot: bool
    maxRuntimeSeconds: int
    maxWaitSeconds: int
    checkpointS3Uri: str
    outputS3Uri: str
    volumeKmsKeyArn: str
    vpc: dict[str, list[str]] = field(default_factory=dict)
    jobNamePrefix: str = ""  # training job names start with it (EventBridge and IAM scope on it)


@dataclass(frozen=True)
class MonitoringOutputs:
    driftNamespace: str
    driftMetricName: str
    driftThreshold: float
    dashboardName: str
    logGroupName: str
    driftDimensions: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> CloudWatch dimensions


@dataclass(frozen=True)
class StackOutputs:
    stackName: str
    environment: str
    region: str
    accountId: str
    kmsKeyArn: str
    dataBucket: str
    artifactBucket: str
    captureBucket: str
    accessLogBucket: str
    executionRoleArn: str
    modelPackageGroups: dict[str, str]
    ecrRepositoryUrl: str
    alertTopicArn: str
    endpoints: dict[str, str]
    approvedPackages: dict[str, str]
    trainingDefaults: TrainingDefaults
    monitoring: MonitoringOutputs
    deployerRoleArn: str
    pipelineRoleArn: str = ""
    approverRoleArn: str = ""
    monitorRoleArn: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StackOutputs:
        """Build from `pulumi stack output --json`; a missing key is an error that names it."""
        # Keys with a default (the roles added after deployerRoleArn) may be absent: a stack
        # deployed before them still reads.
        missing = [k for k in OUTPUT_KEYS if k not in raw and not _has_default(cls, k)]
        if missing:
            raise MissingOutputsError(missing)
        values = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        values["trainingDefaults"] = TrainingDefaults(**_known(TrainingDefaults, raw["trainingDefaults"]))
        values["monitoring"] = MonitoringOutputs(**_known(MonitoringOutputs, raw["monitoring"]))
        values["trainingDefaults"] = _int_fields(values["trainingDefaults"])
        return cls(**values)


class MissingOutputsError(KeyError):
    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(
            f"stack outputs lack {', '.join(missing)}; run `pulumi up` for this stack or check the outputs contract"
        )

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def _known(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    absent = [n for n in names if n not in raw and not _has_default(cls, n)]
    if absent:
        raise MissingOutputsError([f"{cls.__name__}.{n}" for n in absent])
    return {k: v for k, v in raw.items() if k in names}


def _has_default(cls: type, name: str) -> bool:
    from dataclasses import MISSING

    f = next(f for f in fields(cls) if f.name == name)
    return f.default is not MISSING or f.default_factory is not MISSING


def _int_fields(td: TrainingDefaults) -> TrainingDefaults:
    """Pulumi's wire form carries numbers as floats; seconds are whole numbers."""
    from dataclasses import replace

    return replace(td, maxRuntimeSeconds=int(td.maxRuntimeSeconds), maxWaitSeconds=int(td.maxWaitSeconds))
