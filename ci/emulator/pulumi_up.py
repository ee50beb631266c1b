"""The local backend: `pulumi up` for an emulator, when there is no Pulumi CLI and no account.

It reads what a stack declares from the offline preview (the same program, the same physical
names) and makes the core of it exist in the emulator at `AWS_ENDPOINT_URL`: the KMS key (by
its alias), the four buckets with versioning, default encryption and public access blocks,
the SageMaker execution role, the model package groups, the ECR repository, the alert topic,
the pipeline log group, and, for every model with an approved package, the model, the
endpoint config with data capture, the endpoint and its drift alarm. It is idempotent (run it
again after `mlops promote` to roll out), and writes the stack's outputs, with the ARNs the
emulator really gave, where `ci.aws.outputs` finds them.

Deliberately not here: the IAM policies, bucket policies, lifecycle rules, budgets, OIDC and
the canary/rollback machinery (moto evaluates no alarms and has no `update_endpoint`, so an
endpoint whose config changed is replaced). `pulumi up` does all of that for real stacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import ClientError

from ci.aws import clients as aws
from ci.aws.outputs import local_outputs_path, preview_outputs, stack_file
from ci.aws.stackfile import approved_packages
from ci.errors import UsageError
from ci.progress import QUIET, Progress
from infra.common import content_hash, physical_name
from infra.monitoring import VARIANT_NAME, alarm_names
from kernel.instances import accepts_volume_kms_key
from kernel.names import endpoint_name
from kernel.paths import stack_name

if TYPE_CHECKING:
    from kernel.stack_config import ServingConfig, StackConfig

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_emulator() -> str:
    url = aws.endpoint_url()
    if not url or urlparse(url).hostname not in LOOPBACK:
        raise UsageError(
            "the local backend provisions only into an emulator on loopback: set "
            "AWS_ENDPOINT_URL=http://127.0.0.1:PORT "
            "(start one with `moto_server -H 127.0.0.1 -p 5000`); use `pulumi up` for AWS"
        )
    return url


def provision(stack: str, stacks_dir: Path | None = None, progress: Progress = QUIET) -> dict[str, Any]:
    """Create (or confirm) the stack's core resources in the emulator; returns and saves its outputs."""
    from kernel.stack_config import load_stack_config

    endpoint = require_emulator()
    path = stack_file(stack, stacks_dir)
    name = stack_name(stack)
    declared = preview_outputs(path)
    session = aws.make_session(declared.region)
    with aws.aws_errors():
        progress.step(f"provisioning stack {name} in the emulator at {endpoint}")
        key_arn = _kms_key(session, name, progress)
        _buckets(session, declared, key_arn, progress)
        _role(session, declared.executionRoleArn, progress)
        _groups(session, declared.modelPackageGroups, progress)
        _repository(session, declared.ecrRepositoryUrl, key_arn, progress)
        topic_arn = _topic(session, declared.alertTopicArn, key_arn, progress)
        _log_group(session, declared.monitoring.logGroupName, progress)
        approved = approved_packages(path)
        deployed = _deploy(session, name, declared, load_stack_config(path), approved, key_arn, topic_arn, progress)
    raw = _outputs_dict(declared)
    raw.update(kmsKeyArn=key_arn, alertTopicArn=topic_arn, endpoints=deployed, approvedPackages=approved)
    raw["trainingDefaults"]["volumeKmsKeyArn"] = key_arn
    out = local_outputs_path(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(raw, indent=2, sort_keys=True))
    progress.info(f"outputs written to {out}")
    return raw


def _outputs_dict(outputs) -> dict[str, Any]:
    return outputs.model_dump(mode="json")


def _kms_key(session, stack: str, progress: Progress) -> str:
    kms = session.client("kms")
    alias = f"alias/{physical_name(stack)}"
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
    except ClientError as err:
        if aws.error_code(err) != "NotFoundException":
            raise
    found = _unaliased_key(kms, stack)
    if found is None:
        # One attempt: a retried CreateKey whose first answer was lost makes a second key; a re-run
        # of `local up` adopts the one key a lost answer leaves (_unaliased_key).
        once = session.client("kms", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        key = once.create_key(
            Description=f"mlops {stack}: data, artifacts, capture, topics, logs",
            Tags=[{"TagKey": STACK_TAG, "TagValue": stack}],
        )["KeyMetadata"]
        found = key["KeyId"], key["Arn"]
    key_id, arn = found
    kms.enable_key_rotation(KeyId=key_id)
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    progress.info(f"kms key {alias} -> {arn}")
    return arn


STACK_TAG = "mlops:stack"


def _unaliased_key(kms, stack: str) -> tuple[str, str] | None:
    """A key an earlier `local up` created for this stack but never aliased (CreateKey's answer was
    lost, or rotation or the alias failed after it): adopted, so a re-run does not make a second."""
    for page in kms.get_paginator("list_keys").paginate():
        for entry in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=entry["KeyId"]).get("Tags", [])
            if {"TagKey": STACK_TAG, "TagValue": stack} not in tags:
                continue
            if kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"].get("KeyState") == "Enabled":
                return entry["KeyId"], entry["KeyArn"]
    return None


def _buckets(session, outputs, key_arn: str, progress: Progress) -> None:
    s3 = session.client("s3")
    for bucket, kms in (
        (outputs.dataBucket, True),
        (outputs.artifactBucket, True),
        (outputs.captureBucket, True),
        (outputs.accessLogBucket, False),
    ):
        try:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if outputs.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": outputs.region}
            s3.create_bucket(**kwargs)
            progress.info(f"bucket {bucket}")
        except ClientError as err:
            if aws.error_code(err) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn} if kms else {"SSEAlgorithm": "AES256"}
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": kms}]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )


def _role(session, role_arn: str, progress: Progress) -> None:
    iam = session.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        progress.info(f"role {name}")
    except ClientError as err:
        if aws.error_code(err) != "EntityAlreadyExists":
            raise


def _groups(session, groups: dict[str, str], progress: Progress) -> None:
    sm = session.client("sagemaker")
    for model, group in groups.items():
        try:
            sm.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            sm.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription=f"{model} models")
            progress.info(f"model package group {group}")


def _repository(session, url: str, key_arn: str, progress: Progress) -> None:
    ecr = session.client("ecr")
    name = url.split("/", 1)[1]
    try:
        ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key_arn},
        )
        progress.info(f"ecr repository {name}")
    except ClientError as err:
        if aws.error_code(err) != "RepositoryAlreadyExistsException":
            raise


def _topic(session, topic_arn: str, key_arn: str, progress: Progress) -> str:
    sns = session.client("sns")
    name = topic_arn.rsplit(":", 1)[-1]
    arn = sns.create_topic(Name=name, Attributes={"KmsMasterKeyId": key_arn})["TopicArn"]
    progress.info(f"sns topic {name}")
    return arn


def _log_group(session, name: str, progress: Progress) -> None:
    logs = session.client("logs")
    try:
        logs.create_log_group(logGroupName=name)
        progress.info(f"log group {name}")
    except ClientError as err:
        if aws.error_code(err) != "ResourceAlreadyExistsException":
            raise


def _deploy(
    session,
    stack: str,
    outputs,
    config: StackConfig,
    approved: dict[str, str],
    key_arn: str,
    topic_arn: str,
    progress: Progress,
) -> dict[str, str]:
    """Roll each approved package out to its endpoint (replace on change: moto has no update_endpoint)."""
    sm = session.client("sagemaker")
    serving = config.serving
    mode = serving.mode
    serverless = mode == "serverless"  # AWS rule SERVERLESS-EXCLUSIONS: no isolation, VPC or capture
    capture_percent = 0 if serverless else serving.dataCaptureSamplingPercent
    deployed: dict[str, str] = {}
    for model, package_arn in approved.items():
        endpoint = endpoint_name(stack, model, mode)
        if not package_arn:
            _delete_endpoint(sm, endpoint, progress)
            continue
        model_name = physical_name(stack, model, content_hash(package_arn))
        try:
            sm.describe_model(ModelName=model_name)
        except ClientError:
            sm.create_model(
                ModelName=model_name,
                PrimaryContainer={"ModelPackageName": package_arn},
                ExecutionRoleArn=outputs.executionRoleArn,
                EnableNetworkIsolation=not serverless,
            )
        variant = _variant(serving, model_name)
        config_name = physical_name(stack, model, content_hash(package_arn, variant, capture_percent))
        try:
            sm.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError:
            kwargs: dict[str, Any] = {
                "EndpointConfigName": config_name,
                "ProductionVariants": [variant],
            }
            if "InstanceType" in variant and accepts_volume_kms_key(variant["InstanceType"]):
                kwargs["KmsKeyId"] = key_arn  # AWS rule INSTANCE-STORAGE: none on local NVMe types
            if capture_percent:
                kwargs["DataCaptureConfig"] = {
                    "EnableCapture": True,
                    "InitialSamplingPercentage": capture_percent,
                    "DestinationS3Uri": f"s3://{outputs.captureBucket}/{model}",
                    "KmsKeyId": key_arn,
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    "CaptureContentTypeHeader": {
                        "JsonContentTypes": ["application/json"],
                        "CsvContentTypes": ["text/csv"],
                    },
                }
            sm.create_endpoint_config(**kwargs)
        current = _endpoint_config(sm, endpoint)
        if current != config_name:
            if current is not None:
                sm.delete_endpoint(EndpointName=endpoint)
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
            progress.info(f"endpoint {endpoint} now serves {package_arn}")
        _drift_alarm(session, stack, model, endpoint, outputs, topic_arn, mode)
        deployed[model] = endpoint
    return deployed


def _variant(serving: ServingConfig, model_name: str) -> dict[str, Any]:
    """The production variant the stack's serving config declares, as infra/serving.py builds it."""
    if serving.mode == "serverless":
        return {
            "VariantName": VARIANT_NAME,
            "ModelName": model_name,
            "ServerlessConfig": {
                "MemorySizeInMB": serving.serverlessMemoryMb,
                "MaxConcurrency": serving.serverlessMaxConcurrency,
            },
        }
    return {
        "VariantName": VARIANT_NAME,
        "ModelName": model_name,
        "InstanceType": serving.instanceType,
        "InitialInstanceCount": serving.initialInstanceCount,
        "InitialVariantWeight": 1.0,
    }


def _endpoint_config(sm, endpoint: str) -> str | None:
    try:
        return sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except ClientError:
        return None


def _delete_endpoint(sm, endpoint: str, progress: Progress) -> None:
    if _endpoint_config(sm, endpoint) is not None:
        sm.delete_endpoint(EndpointName=endpoint)
        progress.info(f"endpoint {endpoint} removed (no approved package)")


def _drift_alarm(session, stack: str, model: str, endpoint: str, outputs, topic_arn: str, mode: str) -> None:
    """The drift alarm exactly as infra/monitoring.py declares it (moto stores it, never evaluates it)."""
    mon = outputs.monitoring
    dims = (mon.driftDimensions or {}).get(model) or {"EndpointName": endpoint}
    session.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm_names(stack, model, mode).drift,
        Namespace=mon.driftNamespace,
        MetricName=mon.driftMetricName,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=float(mon.driftThreshold),
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
        OKActions=[topic_arn],
        AlarmDescription=f"{endpoint}: data drift score published by `mlops monitor` over {mon.driftThreshold}",
    )
