"""Compose the components of one environment and return the outputs contract (kernel/stack_outputs.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pulumi

from infra.common import physical_name
from infra.environment import Environment, aws_provider
from infra.identity import Identity, IdentityArgs
from infra.monitoring import DRIFT_METRIC, DRIFT_NAMESPACE, Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.registry import Registry, RegistryArgs
from infra.serving import ModelEndpoint, ServingArgs
from infra.storage import DataPerimeter, Storage, StorageArgs
from infra.training import TrainingArgs, TrainingPlatform
from kernel.names import endpoint_name
from kernel.stack_config import StackConfig


def build_stack(
    config: StackConfig, account_id: pulumi.Input[str], raw: dict[str, Any]
) -> dict[str, pulumi.Input[Any]]:
    """Every component of the stack, all through one AWS provider whose default tags tag them."""
    stack = config.stack
    env = Environment(stack, account_id, config.region, config.environment)
    opts = pulumi.ResourceOptions(providers=[aws_provider(config, raw)])
    network = Network("network", NetworkArgs(env, config.network), opts) if config.network.enabled else None
    # Training jobs and instance endpoints run in the stack's network, or in the VPC the user brings.
    vpc = network.vpc_config if network else config.vpc
    storage = Storage(
        "storage",
        StorageArgs(
            env,
            config.retention,
            perimeter=DataPerimeter(
                s3_endpoint_id=network.s3_endpoint.id,
                environments=(stack,),
                downstream=env.downstream,
            )
            if network
            else None,
        ),
        opts,
    )
    if network:
        network.add_flow_logs(storage.key.arn, config.retention.logDays)
    env = replace(env, kms_key_arn=storage.key.arn)
    registry = Registry("registry", RegistryArgs(env, config.models), opts)
    training = TrainingPlatform(
        "training",
        TrainingArgs(
            env,
            data_bucket_arn=storage.data_bucket.arn,
            artifact_bucket_arn=storage.artifact_bucket.arn,
            capture_bucket_arn=storage.capture_bucket.arn,
            repository_arn=registry.repository.arn,
            log_days=config.retention.logDays,
            vpc_enabled=config.private_network,
        ),
        opts,
    )
    deployed = tuple(config.deployed_models)
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            env,
            config.monitoring,
            deployed_models=deployed,
            serving_mode=config.serving.mode,
            models=config.models,
        ),
        opts,
    )
    endpoints = {}
    for model in deployed:
        endpoints[model] = ModelEndpoint(
            f"serving-{model}",
            ServingArgs(
                env,
                model=model,
                package_arn=config.approvedPackages[model],
                execution_role_arn=training.role.arn,
                capture_bucket=storage.capture_bucket.bucket,
                serving=config.serving,
                vpc=vpc,
                alarms=monitoring.alarms[model],
                alarm_resources=monitoring.alarm_resources[model],
            ),
            opts,
        )
    identity = Identity(
        "identity",
        IdentityArgs(
            env,
            config.github,
            execution_role_arn=training.role.arn,
            bucket_arns=[storage.data_bucket.arn, storage.artifact_bucket.arn, storage.capture_bucket.arn],
            topic_arn=monitoring.topic.arn,
            repository_arn=registry.repository.arn,
            training_instance_types=config.training.allowedInstanceTypes,
            artifact_bucket_arn=storage.artifact_bucket.arn,
            capture_bucket_arn=storage.capture_bucket.arn,
            # the guardrails pin jobs to the subnets and group they run in: the stack's network or the user's VPC
            vpc_subnet_ids=tuple(vpc.subnetIds),
            vpc_security_group_ids=tuple(vpc.securityGroupIds),
            serving_mode=config.serving.mode,
        ),
        opts,
    )

    artifact = storage.artifact_bucket.bucket
    return {
        "stackName": stack,
        "environment": config.environment,
        "region": config.region,
        "accountId": account_id,
        "kmsKeyArn": storage.key.arn,
        "dataBucket": storage.data_bucket.bucket,
        "artifactBucket": artifact,
        "captureBucket": storage.capture_bucket.bucket,
        "accessLogBucket": storage.log_bucket.bucket,
        "executionRoleArn": training.role.arn,
        "modelPackageGroups": {m: g.model_package_group_name for m, g in registry.groups.items()},
        "ecrRepositoryUrl": registry.repository.repository_url,
        "alertTopicArn": monitoring.topic.arn,
        "endpoints": {m: e.endpoint.name for m, e in endpoints.items()},
        "approvedPackages": dict(config.approvedPackages),
        "trainingDefaults": {
            "allowedInstanceTypes": list(config.training.allowedInstanceTypes),
            "defaultInstanceType": config.training.defaultInstanceType,
            "useSpot": config.training.spot,
            "maxRuntimeSeconds": config.training.maxRuntimeSeconds,
            "maxWaitSeconds": config.training.maxWaitSeconds,
            "checkpointS3Uri": pulumi.Output.concat("s3://", artifact, "/checkpoints/"),
            "outputS3Uri": pulumi.Output.concat("s3://", artifact, "/training-output/"),
            "volumeKmsKeyArn": storage.key.arn,
            "vpc": {"subnetIds": list(vpc.subnetIds), "securityGroupIds": list(vpc.securityGroupIds)},
            "jobNamePrefix": physical_name(stack),
        },
        "monitoring": {
            "driftNamespace": DRIFT_NAMESPACE,
            "driftMetricName": DRIFT_METRIC,
            "driftDimensions": {
                m: {"EndpointName": endpoint_name(stack, m, config.serving.mode)} for m in config.models
            },
            "driftThreshold": config.monitoring.driftThreshold,
            "dashboardName": monitoring.dashboard.dashboard_name,
            "logGroupName": training.log_group.name,
        },
        "deployerRoleArn": identity.role.arn,
        "pipelineRoleArn": identity.role.arn,
        "approverRoleArn": identity.approver.arn,
        "monitorRoleArn": identity.monitor.arn,
    }
