"""Serving: for each model with an approved package, a model, an endpoint config and an endpoint.

Nothing is declared for a model without an approved package: no endpoint, no cost. A change
of the endpoint config's content replaces it under a new name (a known provider bug otherwise
leaves an endpoint on its old config), and the endpoint rolls out new configs blue/green with
canary or linear traffic shifting, rolled back automatically by the endpoint's own alarms.

What AWS enforces here and the mocks do not (docs/aws-rules.md, "Hosting, storage and events"):
- INSTANCE-STORAGE: instance types with local NVMe storage refuse a volume KMS key
  (`kernel.instances.accepts_volume_kms_key`); captured data keeps its key.
- SERVERLESS-EXCLUSIONS: a serverless endpoint takes no network isolation and no VPC on its
  model, no data capture and no blue/green traffic shifting.
- ENDPOINT-ROLLBACK-KEEPS-CONFIG: a failed rollout returns the endpoint to its old config, so
  Pulumi never deletes a config (`retain_on_delete`); each gets a fresh generated name, so a
  retained one never blocks a rollback to the same content; `mlops verify` reports stale ones.
- AUTOSCALING-INSTANCE-CHANGE / AUTOSCALING-INITIAL-COUNT: see `ModelEndpoint._autoscaling`.
- ENDPOINT-MODE-SWITCH: see `infra.monitoring.endpoint_name`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import Component, content_hash, physical_name
from infra.environment import Environment
from infra.monitoring import VARIANT_NAME, EndpointAlarmNames
from infra.network import Placement
from kernel import aws_rules
from kernel.instances import accepts_volume_kms_key
from kernel.names import endpoint_config_prefix, endpoint_name
from kernel.stack_config import ServingConfig, VpcConfig

CAPTURE_CONTENT_TYPES: aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgsDict = {
    "json_content_types": ["application/json"],
    "csv_content_types": ["text/csv"],
}


@dataclass(frozen=True)
class ServingArgs:
    env: Environment
    model: str
    package_arn: str
    execution_role_arn: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
    serving: ServingConfig
    vpc: VpcConfig | Placement
    alarms: EndpointAlarmNames
    alarm_resources: tuple[pulumi.Resource, ...] = ()  # the rollback alarms must exist before a deployment


def fleet_size(serving: ServingConfig) -> int:
    """Instances a new (green) fleet starts with. AWS rule AUTOSCALING-INITIAL-COUNT.

    Every deployment builds the new fleet at the config's InitialInstanceCount, whatever the
    autoscaler had scaled the old fleet to (the provider cannot pass UpdateEndpoint's
    RetainAllVariantProperties). Starting at the top of the autoscaling range means the green
    fleet can carry any load the blue one carried; the target-tracking policy then scales it in.
    """
    return max(serving.initialInstanceCount, serving.autoscaling.maxCapacity)


class ModelEndpoint(Component):
    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelEndpoint", name, opts)
        s = args.serving
        serverless = s.mode == "serverless"
        # SERVERLESS-EXCLUSIONS: serverless hosting runs the container on AWS-managed compute that
        # supports neither network isolation nor a VPC; instance hosting keeps both.
        isolated = not serverless
        vpc: aws.sagemaker.ModelVpcConfigArgsDict | None = (
            {"subnets": list(args.vpc.subnetIds), "security_group_ids": list(args.vpc.securityGroupIds)}
            if args.vpc.enabled and not serverless
            else None
        )
        # The stack's own network gives subnet and group ids only once created: hash the ids, not
        # the Output objects (a BYO VPC's plain ids hash exactly as before).
        vpc_ids = pulumi.Output.from_input(vpc)

        # Models are immutable (every input forces a replacement, created before the old one is
        # deleted), so the name carries everything that may change, or the new model would
        # collide with the old one's name.
        self.model = aws.sagemaker.Model(
            f"{name}-model",
            name=vpc_ids.apply(
                lambda ids: physical_name(args.env.stack, args.model, content_hash(args.package_arn, isolated, ids))
            ),
            primary_container={"model_package_name": args.package_arn},
            execution_role_arn=args.execution_role_arn,
            enable_network_isolation=isolated,
            vpc_config=vpc,
            tags={
                "model-package": args.package_arn.rsplit("/", 2)[-2] + "/" + args.package_arn.rsplit("/", 1)[-1],
            },
            opts=self.child,
        )

        variant: aws.sagemaker.EndpointConfigurationProductionVariantArgsDict = {
            "variant_name": VARIANT_NAME,
            "model_name": self.model.name,
        }
        if serverless:
            variant["serverless_config"] = {
                "memory_size_in_mb": s.serverlessMemoryMb,
                "max_concurrency": s.serverlessMaxConcurrency,
            }
        else:
            variant["instance_type"] = s.instanceType
            variant["initial_instance_count"] = fleet_size(s)
            variant["initial_variant_weight"] = 1
        capture: aws.sagemaker.EndpointConfigurationDataCaptureConfigArgsDict | None = None
        if s.dataCaptureSamplingPercent and not serverless:  # SERVERLESS-EXCLUSIONS: no capture
            capture = {
                "enable_capture": True,
                "initial_sampling_percentage": s.dataCaptureSamplingPercent,
                "destination_s3_uri": pulumi.Output.concat("s3://", args.capture_bucket, "/", args.model),
                "kms_key_id": args.env.kms_key_arn,  # captured data keeps its key on every instance type
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": CAPTURE_CONTENT_TYPES,
            }
        # INSTANCE-STORAGE: NVMe-backed types (g4dn, g5, g6...) have no EBS volume to encrypt and
        # refuse a volume key; serverless variants run on AWS-managed storage and take none either.
        volume_key = not serverless and accepts_volume_kms_key(s.instanceType)
        shape = {k: v for k, v in variant.items() if k != "model_name"}
        capture_percent = s.dataCaptureSamplingPercent if capture else 0
        digest = vpc_ids.apply(
            lambda ids: content_hash(args.package_arn, s.mode, shape, isolated, ids, capture_percent, volume_key)
        )
        self.config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            # Every input of a config forces its replacement, and each replacement gets a new,
            # unique name from the provider (prefix + 26 characters): the endpoint always sees a
            # new name when its config changes (the provider otherwise may not roll it), and a
            # rollback to earlier content never collides with the retained earlier config of the
            # same content, which a name made of the content alone would.
            name_prefix=endpoint_config_prefix(args.env.stack, args.model),
            production_variants=[variant],
            kms_key_arn=args.env.kms_key_arn if volume_key else None,
            data_capture_config=capture,
            tags={"content-digest": digest},
            opts=pulumi.ResourceOptions(
                parent=self,
                # ENDPOINT-ROLLBACK-KEEPS-CONFIG: a failed rollout puts the endpoint back on its old
                # config; had Pulumi deleted it, the endpoint would serve from a config that no
                # longer exists. So Pulumi forgets replaced configs but never deletes them (they
                # cost nothing); `mlops verify` lists those no endpoint uses.
                retain_on_delete=True,
                # AUTOSCALING-INSTANCE-CHANGE: replacing the config first deletes what depends on
                # its name (the scalable target and its policy, see _autoscaling), before the
                # endpoint is updated. Deleting the old config itself is a no-op (retained).
                delete_before_replace=True,
            ),
        )

        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            # ENDPOINT-MODE-SWITCH: the name carries the serving mode (infra.monitoring.endpoint_name)
            name=endpoint_name(args.env.stack, args.model, s.mode),
            endpoint_config_name=self.config.id,  # the provider's id of a config is its generated name
            # SERVERLESS-EXCLUSIONS: no blue/green traffic shifting on serverless endpoints
            deployment_config=None if serverless else self._deployment(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.alarm_resources)),
        )
        if not serverless:
            self._autoscaling(name, args)
        self.register_outputs({"endpointName": self.endpoint.name, "endpointConfigName": self.config.id})

    @staticmethod
    def _deployment(args: ServingArgs) -> aws.sagemaker.EndpointDeploymentConfigArgsDict:
        r = args.serving.rollout
        routing: aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgsDict = {
            "type": r.type.upper(),
            "wait_interval_in_seconds": max(r.bakeSeconds, 0),
        }
        if r.type == "canary":
            routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": r.stepPercent}
        elif r.type == "linear":
            routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": r.stepPercent}
        termination_wait = min(r.bakeSeconds, 3600)
        api_routing = {
            "Type": routing["type"],
            "WaitIntervalInSeconds": routing["wait_interval_in_seconds"],
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": r.stepPercent} if r.type == "linear" else {},
        }
        baking = aws_rules.rollout_seconds(api_routing, termination_wait)
        return {
            "blue_green_update_policy": {
                "traffic_routing_configuration": routing,
                "termination_wait_in_seconds": termination_wait,
                # AWS rule BLUEGREEN-WAITS: SageMaker allows 600-14400 s for the whole deployment, but
                # the provider stops waiting after 3600 s while SageMaker carries on; leave ten minutes
                # for provisioning beyond the baking time, within the provider's wait (config refuses
                # a rollout that cannot fit).
                "maximum_execution_timeout_in_seconds": min(
                    aws_rules.PROVIDER_ENDPOINT_WAIT_SECONDS, max(600, baking + 600)
                ),
            },
            "auto_rollback_configuration": {"alarms": [{"alarm_name": a} for a in args.alarms.rollback]},
        }

    def _autoscaling(self, name: str, args: ServingArgs) -> None:
        """Target tracking on invocations per instance, deregistered around every config rollout.

        AWS rule AUTOSCALING-INSTANCE-CHANGE: UpdateEndpoint fails when it changes the instance
        type (or removes) a variant registered as a scalable target; AWS's procedure is to delete
        the scaling policy, deregister the target, update the endpoint, then register again.
        Pulumi cannot order "delete, update, create" around one resource, so the graph does it:
        the target's resource id depends on the endpoint config's name as well as the endpoint's,
        and the config is replaced delete-before-replace. When a new config rolls out, the engine
        first deletes every resource whose replacement-forcing input depends on the old config
        (the policy, then the target: deregistered), then creates the config, updates the
        endpoint (no target left to refuse it) and registers target and policy again. Pulumi
        cannot tell an instance-type change from a model change, so every rollout does this;
        autoscaling is blocked during an endpoint update anyway.
        """
        a = args.serving.autoscaling
        resource_id = pulumi.Output.all(self.endpoint.name, self.config.id).apply(
            lambda names: f"endpoint/{names[0]}/variant/{VARIANT_NAME}"
        )
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=resource_id,
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=a.minCapacity,
            max_capacity=a.maxCapacity,
            opts=self.child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            name=physical_name(args.env.stack, args.model, "invocations-per-instance"),
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
            opts=self.child,
        )
