"""The stack outputs contract: what every stack exports, and the one typed object that reads it.

`infra/__main__.py` exports exactly these keys (camelCase, as `pulumi stack output --json`
prints them); `ci/` reads them back with `StackOutputs.from_dict`, whether they come from the
Pulumi CLI, the offline preview, or the local backend. Pydantic models: the JSON shape is the
field list, `model_dump()` writes it back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class _Outputs(BaseModel):
    """Frozen; keys beyond the contract are ignored (a newer stack still reads)."""

    model_config = ConfigDict(frozen=True)


class TrainingDefaults(_Outputs):
    allowedInstanceTypes: list[str]
    defaultInstanceType: str
    useSpot: bool
    maxRuntimeSeconds: int  # Pulumi's wire form carries numbers as floats (7200.0): whole seconds here
    maxWaitSeconds: int
    checkpointS3Uri: str
    outputS3Uri: str
    volumeKmsKeyArn: str
    vpc: dict[str, list[str]] = Field(default_factory=dict)
    jobNamePrefix: str = ""  # training job names start with it (EventBridge and IAM scope on it)


class MonitoringOutputs(_Outputs):
    driftNamespace: str
    driftMetricName: str
    driftThreshold: float
    dashboardName: str
    logGroupName: str
    driftDimensions: dict[str, dict[str, str]] = Field(default_factory=dict)  # model -> CloudWatch dimensions


class StackOutputs(_Outputs):
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
    # Roles added after deployerRoleArn: a stack deployed before them still reads.
    pipelineRoleArn: str = ""
    approverRoleArn: str = ""
    monitorRoleArn: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StackOutputs:
        """Build from `pulumi stack output --json`; a missing key is an error that names it
        (`dataBucket`, or `TrainingDefaults.outputS3Uri` inside a block)."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            missing = [e["loc"] for e in err.errors() if e["type"] == "missing"]
            if not missing:
                raise
            top = [str(loc[0]) for loc in missing if len(loc) == 1]
            nested = [f"{_block_name(str(loc[0]))}.{loc[1]}" for loc in missing if len(loc) == 2]
            raise MissingOutputsError(top or nested) from None


def _block_name(key: str) -> str:
    """`trainingDefaults` -> `TrainingDefaults`: errors name a block's model, as they always have."""
    annotation = StackOutputs.model_fields[key].annotation
    return getattr(annotation, "__name__", key)


class MissingOutputsError(KeyError):
    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(
            f"stack outputs lack {', '.join(missing)}; run `pulumi up` for this stack or check the outputs contract"
        )

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])
