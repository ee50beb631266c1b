"""Monitoring: the alert topic, the alarms that watch endpoints and training, a dashboard, a budget.

Alarms name the exact namespace, metric and dimensions that SageMaker (or our pipeline, for
drift) emits, otherwise they never fire. Endpoint alarms double as the rollout's automatic
rollback alarms, so they are declared here, before the endpoints, under deterministic names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import physical_name, policy_document

VARIANT_NAME = "primary"
DRIFT_NAMESPACE = "MLOps/Drift"
DRIFT_METRIC = "DriftScore"


@dataclass(frozen=True)
class EndpointAlarmNames:
    errors: str
    latency: str
    drift: str

    @property
    def rollback(self) -> list[str]:
        """The alarms a deployment watches to roll back: the endpoint's own health."""
        return [self.errors, self.latency]


def endpoint_name(stack: str, model: str, mode: str = "instance") -> str:
    """The endpoint's name; a serverless endpoint carries its mode. AWS rule ENDPOINT-MODE-SWITCH.

    UpdateEndpoint cannot move an endpoint from instances to serverless, so a change of serving
    mode must create another endpoint. Under one fixed name Pulumi would have to delete the live
    endpoint before creating its successor (an outage); with the mode in the name the new
    endpoint is created first, the stack output `endpoints` and the alarms follow it, and only
    then is the old one deleted. Instance endpoints keep the plain name.
    """
    return physical_name(stack, model) if mode == "instance" else physical_name(stack, model, mode)


def alarm_names(stack: str, model: str, mode: str = "instance") -> EndpointAlarmNames:
    base = endpoint_name(stack, model, mode)
    return EndpointAlarmNames(f"{base}-5xx-errors", f"{base}-latency-p99", f"{base}-drift")


@dataclass(frozen=True)
class MonitoringArgs:
    stack: str
    account_id: pulumi.Input[str]
    region: str
    kms_key_arn: pulumi.Input[str]
    alert_email: str
    deployed_models: tuple[str, ...]
    serving_mode: str
    latency_p99_ms: int
    error_5xx_threshold: int
    drift_threshold: float
    monthly_budget_usd: float
    tags: dict[str, str]


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = physical_name(args.stack)

        self.topic = aws.sns.Topic(
            f"{name}-alerts", name=f"{prefix}-alerts", kms_master_key_id=args.kms_key_arn, tags=args.tags, opts=child
        )
        aws.sns.TopicPolicy(
            f"{name}-alerts-publishers",
            arn=self.topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "AwsServicesOfThisAccountPublish",
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com"]
                        },
                        "Action": "sns:Publish",
                        "Resource": self.topic.arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    }
                ]
            ),
            opts=child,
        )
        if args.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email", topic=self.topic.arn, protocol="email", endpoint=args.alert_email, opts=child
            )

        self.alarms: dict[str, EndpointAlarmNames] = {}
        self.alarm_resources: dict[str, tuple[aws.cloudwatch.MetricAlarm, ...]] = {}
        for model in args.deployed_models:
            self.alarms[model] = self._endpoint_alarms(name, model, args)

        self._training_failures(name, args)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=prefix, dashboard_body=json.dumps(self._dashboard(args)), opts=child
        )
        self._budget(name, args)
        self.register_outputs({"alertTopicArn": self.topic.arn, "dashboardName": self.dashboard.dashboard_name})

    def _endpoint_alarms(self, name: str, model: str, args: MonitoringArgs) -> EndpointAlarmNames:
        child = pulumi.ResourceOptions(parent=self)
        names = alarm_names(args.stack, model, args.serving_mode)
        endpoint = endpoint_name(args.stack, model, args.serving_mode)
        dims = {"EndpointName": endpoint, "VariantName": VARIANT_NAME}
        actions = dict(alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn])
        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-{model}-5xx",
            name=names.errors,
            alarm_description=f"{endpoint}: model container 5xx errors; rolls back a deployment in progress",
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dims,
            statistic="Sum",
            period=60,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=args.error_5xx_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            tags=args.tags,
            opts=child,
            **actions,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-{model}-latency",
            name=names.latency,
            alarm_description=(
                f"{endpoint}: p99 model latency over {args.latency_p99_ms} ms (ModelLatency is in microseconds)"
            ),
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dims,
            extended_statistic="p99",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            threshold=args.latency_p99_ms * 1000,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            tags=args.tags,
            opts=child,
            **actions,
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-{model}-drift",
            name=names.drift,
            alarm_description=f"{endpoint}: data drift score published by `mlops monitor` over {args.drift_threshold}",
            namespace=DRIFT_NAMESPACE,
            metric_name=DRIFT_METRIC,
            dimensions={"EndpointName": endpoint},
            statistic="Maximum",
            period=3600,
            evaluation_periods=1,
            threshold=args.drift_threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            tags=args.tags,
            opts=child,
            **actions,
        )
        self.alarm_resources[model] = (errors, latency)
        return names

    def _training_failures(self, name: str, args: MonitoringArgs) -> None:
        """EventBridge turns a failed training job of this stack into an alert, and an alarm counts them."""
        child = pulumi.ResourceOptions(parent=self)
        rule_name = physical_name(args.stack, "training-failed")
        rule = aws.cloudwatch.EventRule(
            f"{name}-training-failed",
            name=rule_name,
            description=f"SageMaker training jobs of mlops {args.stack} that failed or stopped",
            event_pattern=json.dumps(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Training Job State Change"],
                    "detail": {
                        "TrainingJobStatus": ["Failed", "Stopped"],
                        "TrainingJobName": [{"prefix": physical_name(args.stack) + "-"}],
                    },
                }
            ),
            tags=args.tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-training-failed-alert", rule=rule.name, arn=self.topic.arn, target_id="alert-topic", opts=child
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-training-failed",
            name=physical_name(args.stack, "training-failed"),
            alarm_description=f"a training job of mlops {args.stack} failed or stopped",
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions={"RuleName": rule_name},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            tags=args.tags,
            opts=child,
        )

    def _dashboard(self, args: MonitoringArgs) -> dict:
        widgets = []
        for i, model in enumerate(args.deployed_models):
            endpoint = endpoint_name(args.stack, model, args.serving_mode)
            dims = ["EndpointName", endpoint, "VariantName", VARIANT_NAME]
            for j, (title, metric, stat) in enumerate(
                [
                    ("invocations", "Invocations", "Sum"),
                    ("p99 latency (µs)", "ModelLatency", "p99"),
                    ("5xx errors", "Invocation5XXErrors", "Sum"),
                ]
            ):
                widgets.append(
                    {
                        "type": "metric",
                        "x": 6 * j,
                        "y": 6 * i,
                        "width": 6,
                        "height": 6,
                        "properties": {
                            "title": f"{model}: {title}",
                            "region": args.region,
                            "stat": stat,
                            "period": 60,
                            "metrics": [["AWS/SageMaker", metric, *dims]],
                        },
                    }
                )
            widgets.append(
                {
                    "type": "metric",
                    "x": 18,
                    "y": 6 * i,
                    "width": 6,
                    "height": 6,
                    "properties": {
                        "title": f"{model}: drift score",
                        "region": args.region,
                        "stat": "Maximum",
                        "period": 3600,
                        "metrics": [[DRIFT_NAMESPACE, DRIFT_METRIC, "EndpointName", endpoint]],
                        "annotations": {"horizontal": [{"label": "threshold", "value": args.drift_threshold}]},
                    },
                }
            )
        widgets.append(
            {
                "type": "metric",
                "x": 0,
                "y": 6 * len(args.deployed_models),
                "width": 12,
                "height": 6,
                "properties": {
                    "title": "failed training jobs",
                    "region": args.region,
                    "stat": "Sum",
                    "period": 300,
                    "metrics": [
                        ["AWS/Events", "TriggeredRules", "RuleName", physical_name(args.stack, "training-failed")]
                    ],
                },
            }
        )
        return {"widgets": widgets}

    def _budget(self, name: str, args: MonitoringArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        subscribers = dict(subscriber_sns_topic_arns=[self.topic.arn])
        if args.alert_email:
            subscribers["subscriber_email_addresses"] = [args.alert_email]
        aws.budgets.Budget(
            f"{name}-budget",
            name=physical_name(args.stack, "monthly"),
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monthly_budget_usd:.2f}",
            limit_unit="USD",
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:environment${args.stack}"]}],
            notifications=[
                {
                    "comparison_operator": "GREATER_THAN",
                    "notification_type": "ACTUAL",
                    "threshold": 80,
                    "threshold_type": "PERCENTAGE",
                    **subscribers,
                },
                {
                    "comparison_operator": "GREATER_THAN",
                    "notification_type": "FORECASTED",
                    "threshold": 100,
                    "threshold_type": "PERCENTAGE",
                    **subscribers,
                },
            ],
            tags=args.tags,
            opts=child,
        )
