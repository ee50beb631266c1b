"""Serving: for each model with an approved package, a model, an endpoint config and an endpoint.

Nothing is declared for a model without an approved package: no endpoint, no cost. The
endpoint config's name derives from its content (a known provider bug otherwise leaves an
endpoint on its old config), and the endpoint rolls out new configs blue/green with canary
or linear traffic shifting, rolled back automatically by the endpoint's own alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import content_hash, physical_name
from infra.config import ServingConfig, VpcConfig
from infra.monitoring import VARIANT_NAME, EndpointAlarmNames, endpoint_name

CAPTURE_CONTENT_TYPES = {"json_content_types": ["application/json"], "csv_content_types": ["text/csv"]}


@dataclass(frozen=True)
class ServingArgs:
    stack: str
    model: str
    package_arn: str
    execution_role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
    serving: ServingConfig
    vpc: VpcConfig
    alarms: EndpointAlarmNames
    tags: dict[str, str]
    alarm_resources: tuple[pulumi.Resource, ...] = ()  # the rollback alarms must exist before a deployment


class ModelEndpoint(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.serving
        vpc = (
            {"subnets": list(args.vpc.subnetIds), "security_group_ids": list(args.vpc.securityGroupIds)}
            if args.vpc.enabled
            else None
        )

        self.model = aws.sagemaker.Model(
            f"{name}-model",
            name=physical_name(args.stack, args.model, content_hash(args.package_arn)),
            primary_container={"model_package_name": args.package_arn},
            execution_role_arn=args.execution_role_arn,
            enable_network_isolation=True,
            vpc_config=vpc,
            tags={
                **args.tags,
                "model-package": args.package_arn.rsplit("/", 2)[-2] + "/" + args.package_arn.rsplit("/", 1)[-1],
            },
            opts=child,
        )

        if s.mode == "serverless":
            variant = {
                "variant_name": VARIANT_NAME,
                "model_name": self.model.name,
                "serverless_config": {
                    "memory_size_in_mb": s.serverlessMemoryMb,
                    "max_concurrency": s.serverlessMaxConcurrency,
                },
            }
        else:
            variant = {
                "variant_name": VARIANT_NAME,
                "model_name": self.model.name,
                "instance_type": s.instanceType,
                "initial_instance_count": s.initialInstanceCount,
                "initial_variant_weight": 1,
            }
        capture = None
        if s.dataCaptureSamplingPercent:
            capture = {
                "enable_capture": True,
                "initial_sampling_percentage": s.dataCaptureSamplingPercent,
                "destination_s3_uri": pulumi.Output.concat("s3://", args.capture_bucket, "/", args.model),
                "kms_key_id": args.kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": CAPTURE_CONTENT_TYPES,
            }
        digest = content_hash(
            args.package_arn,
            s.mode,
            s.instanceType,
            s.initialInstanceCount,
            s.serverlessMemoryMb,
            s.serverlessMaxConcurrency,
            s.dataCaptureSamplingPercent,
            args.vpc,
        )
        self.config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=physical_name(args.stack, args.model, digest),
            production_variants=[variant],
            # Serverless variants run on AWS-managed storage and take no volume key.
            kms_key_arn=args.kms_key_arn if s.mode == "instance" else None,
            data_capture_config=capture,
            tags=args.tags,
            opts=child,
        )

        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=endpoint_name(args.stack, args.model),
            endpoint_config_name=self.config.name,
            deployment_config=self._deployment(args) if s.mode == "instance" else None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.alarm_resources)),
        )
        if s.mode == "instance":
            self._autoscaling(name, args)
        self.register_outputs({"endpointName": self.endpoint.name, "endpointConfigName": self.config.name})

    @staticmethod
    def _deployment(args: ServingArgs) -> dict:
        r = args.serving.rollout
        routing: dict = {"type": r.type.upper(), "wait_interval_in_seconds": max(r.bakeSeconds, 0)}
        if r.type == "canary":
            routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": r.stepPercent}
        elif r.type == "linear":
            routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": r.stepPercent}
        return {
            "blue_green_update_policy": {
                "traffic_routing_configuration": routing,
                "termination_wait_in_seconds": min(r.bakeSeconds, 3600),
                # SageMaker allows 600-14400 s for the whole blue/green deployment.
                "maximum_execution_timeout_in_seconds": min(
                    14400, 1800 + 2 * r.bakeSeconds * (100 // max(r.stepPercent, 1))
                ),
            },
            "auto_rollback_configuration": {"alarms": [{"alarm_name": a} for a in args.alarms.rollback]},
        }

    def _autoscaling(self, name: str, args: ServingArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        a = args.serving.autoscaling
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", self.endpoint.name, "/variant/", VARIANT_NAME),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=a.minCapacity,
            max_capacity=a.maxCapacity,
            tags=args.tags,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            name=physical_name(args.stack, args.model, "invocations-per-instance"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration={
                "target_value": a.targetInvocationsPerInstance,
                "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=child,
        )
