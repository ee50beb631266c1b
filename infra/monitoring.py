"""Monitoring: the alert topic, the alarms that watch endpoints and training, a dashboard, a budget.

Alarms name the exact namespace, metric and dimensions that SageMaker (or our pipeline, for
drift) emits, otherwise they never fire. Endpoint alarms double as the rollout's automatic
rollback alarms, so they are declared here, before the endpoints, under deterministic names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.common import Component, physical_name, policy_document
from infra.environment import Environment
from infra.registry import group_name
from kernel.names import endpoint_alarm_names, endpoint_name
from kernel.stack_config import MonitoringConfig

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


def alarm_names(stack: str, model: str, mode: str = "instance") -> EndpointAlarmNames:
    return EndpointAlarmNames(*endpoint_alarm_names(stack, model, mode))


# SageMaker's own lifecycle events (EventBridge, source aws.sagemaker), as documented with samples at
# https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
TRAINING_EVENT = "SageMaker Training Job State Change"
PACKAGE_EVENT = "SageMaker Model Package State Change"
ENDPOINT_EVENT = "SageMaker Endpoint State Change"
# AWS's sample endpoint event spells the status IN_SERVICE where the API says InService: accept both.
ENDPOINT_SETTLED = ("IN_SERVICE", "InService", "FAILED", "Failed", "UPDATE_ROLLBACK_FAILED", "UpdateRollbackFailed")


@dataclass(frozen=True)
class LifecycleRule:
    """One EventBridge rule for SageMaker's own events, and the sentence it sends to the alert topic."""

    key: str
    description: str
    pattern: dict[str, Any]
    input_paths: dict[str, str]
    template: str  # EventBridge input template: a JSON string with <placeholders> from input_paths

    def rule_name(self, stack: str) -> str:
        return physical_name(stack, self.key)


def lifecycle_rules(stack: str, models: tuple[str, ...], serving_mode: str) -> tuple[LifecycleRule, ...]:
    """The lifecycle events of this stack's jobs, packages and endpoints that reach people; each event
    matches exactly one rule, and each pattern names only this stack's resources."""
    jobs = [{"prefix": physical_name(stack) + "-"}]
    sagemaker = ["aws.sagemaker"]

    def training(key: str, statuses: list[str], what: str) -> LifecycleRule:
        return LifecycleRule(
            key,
            f"SageMaker training jobs of mlops {stack} that {what}",
            {
                "source": sagemaker,
                "detail-type": [TRAINING_EVENT],
                "detail": {"TrainingJobStatus": statuses, "TrainingJobName": jobs},
            },
            {
                "job": "$.detail.TrainingJobName",
                "status": "$.detail.TrainingJobStatus",
                "secondary": "$.detail.SecondaryStatus",
            },
            # Jobs are named mlops-<stack>-<model>-<time> (ci/steps/training.py base_job_name): names say the model.
            f'"mlops {stack}: training job <job> ended <status> (<secondary>)."',
        )

    return (
        training("training-failed", ["Failed", "Stopped"], "failed or stopped"),
        training("training-completed", ["Completed"], "completed"),
        LifecycleRule(
            "model-package-changed",
            f"model packages of mlops {stack} registered, or their approval changed",
            {
                "source": sagemaker,
                "detail-type": [PACKAGE_EVENT],
                "detail": {
                    "ModelPackageGroupName": [group_name(m, stack) for m in models],
                    "ModelPackageStatus": ["Completed", "Failed"],
                },
            },
            {
                "group": "$.detail.ModelPackageGroupName",
                "version": "$.detail.ModelPackageVersion",
                "approval": "$.detail.ModelApprovalStatus",
                "status": "$.detail.ModelPackageStatus",
            },
            f'"mlops {stack}: model package <group>/<version> is <approval> (package <status>)."',
        ),
        LifecycleRule(
            "endpoint-changed",
            f"endpoints of mlops {stack} in service after a deployment, failed or rolled back",
            {
                "source": sagemaker,
                "detail-type": [ENDPOINT_EVENT],
                "detail": {
                    "EndpointName": [endpoint_name(stack, m, serving_mode) for m in models],
                    "EndpointStatus": list(ENDPOINT_SETTLED),
                },
            },
            {
                "endpoint": "$.detail.EndpointName",
                "status": "$.detail.EndpointStatus",
                "config": "$.detail.EndpointConfigName",
            },
            f'"mlops {stack}: endpoint <endpoint> is <status> on config <config> '
            '(after a rollback it is the old config: check `mlops verify`)."',
        ),
    )


@dataclass(frozen=True)
class MonitoringArgs:
    env: Environment
    monitoring: MonitoringConfig
    deployed_models: tuple[str, ...]
    serving_mode: str
    models: tuple[str, ...]


class Monitoring(Component):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:Monitoring", name, opts)
        prefix = physical_name(args.env.stack)

        self.topic = aws.sns.Topic(
            f"{name}-alerts", name=f"{prefix}-alerts", kms_master_key_id=args.env.kms_key_arn, opts=self.child
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
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.env.account_id}},
                    }
                ]
            ),
            opts=self.child,
        )
        if args.monitoring.alertEmail:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.monitoring.alertEmail,
                opts=self.child,
            )

        self.alarms: dict[str, EndpointAlarmNames] = {}
        self.alarm_resources: dict[str, tuple[aws.cloudwatch.MetricAlarm, ...]] = {}
        for model in args.deployed_models:
            self.alarms[model] = self._endpoint_alarms(name, model, args)

        self._lifecycle_events(name, args)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=prefix,
            dashboard_body=json.dumps(self._dashboard(args)),
            opts=self.child,
        )
        self._budget(name, args)
        self.register_outputs({"alertTopicArn": self.topic.arn, "dashboardName": self.dashboard.dashboard_name})

    def _endpoint_alarms(self, name: str, model: str, args: MonitoringArgs) -> EndpointAlarmNames:
        names = alarm_names(args.env.stack, model, args.serving_mode)
        endpoint = endpoint_name(args.env.stack, model, args.serving_mode)

        def alarm(suffix: str, alarm_name: str, description: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
            """An alarm that tells the alert topic when it fires and when it clears; no data is no alarm."""
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{model}-{suffix}",
                name=alarm_name,
                alarm_description=f"{endpoint}: {description}",
                treat_missing_data="notBreaching",
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                opts=self.child,
                **metric,
            )

        def every_minute_for(minutes: int, metric_name: str, **statistic: str) -> dict[str, Any]:
            """The variant's SageMaker metric, breaching in each of `minutes` minutes in a row."""
            return dict(
                namespace="AWS/SageMaker",
                metric_name=metric_name,
                dimensions={"EndpointName": endpoint, "VariantName": VARIANT_NAME},
                period=60,
                evaluation_periods=minutes,
                datapoints_to_alarm=minutes,
                **statistic,
            )

        errors = alarm(
            "5xx",
            names.errors,
            "model container 5xx errors; rolls back a deployment in progress",
            threshold=args.monitoring.error5xxThreshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            **every_minute_for(2, "Invocation5XXErrors", statistic="Sum"),
        )
        latency = alarm(
            "latency",
            names.latency,
            f"p99 model latency over {args.monitoring.latencyP99Ms} ms (ModelLatency is in microseconds)",
            threshold=args.monitoring.latencyP99Ms * 1000,
            comparison_operator="GreaterThanThreshold",
            **every_minute_for(3, "ModelLatency", extended_statistic="p99"),
        )
        alarm(
            "drift",
            names.drift,
            f"data drift score published by `mlops monitor` over {args.monitoring.driftThreshold}",
            namespace=DRIFT_NAMESPACE,
            metric_name=DRIFT_METRIC,
            dimensions={"EndpointName": endpoint},
            statistic="Maximum",
            period=3600,
            evaluation_periods=1,
            threshold=args.monitoring.driftThreshold,
            comparison_operator="GreaterThanThreshold",
        )
        self.alarm_resources[model] = (errors, latency)
        return names

    def _lifecycle_events(self, name: str, args: MonitoringArgs) -> None:
        """SageMaker's own events reach the alert topic, each rule with a message that says what happened,
        to which model, in which environment; an alarm counts failed training jobs."""
        for lifecycle in lifecycle_rules(args.env.stack, args.models, args.serving_mode):
            rule = aws.cloudwatch.EventRule(
                f"{name}-{lifecycle.key}",
                name=lifecycle.rule_name(args.env.stack),
                description=lifecycle.description,
                event_pattern=json.dumps(lifecycle.pattern),
                opts=self.child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{lifecycle.key}-alert",
                rule=rule.name,
                arn=self.topic.arn,
                target_id="alert-topic",
                input_transformer={"input_paths": lifecycle.input_paths, "input_template": lifecycle.template},
                opts=self.child,
            )
        aws.cloudwatch.MetricAlarm(
            f"{name}-training-failed",
            name=physical_name(args.env.stack, "training-failed"),
            alarm_description=f"a training job of mlops {args.env.stack} failed or stopped",
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions={"RuleName": physical_name(args.env.stack, "training-failed")},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            opts=self.child,
        )

    def _dashboard(self, args: MonitoringArgs) -> dict[str, Any]:
        widgets = []
        for i, model in enumerate(args.deployed_models):
            endpoint = endpoint_name(args.env.stack, model, args.serving_mode)
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
                            "region": args.env.region,
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
                        "region": args.env.region,
                        "stat": "Maximum",
                        "period": 3600,
                        "metrics": [[DRIFT_NAMESPACE, DRIFT_METRIC, "EndpointName", endpoint]],
                        "annotations": {
                            "horizontal": [{"label": "threshold", "value": args.monitoring.driftThreshold}]
                        },
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
                    "region": args.env.region,
                    "stat": "Sum",
                    "period": 300,
                    "metrics": [
                        ["AWS/Events", "TriggeredRules", "RuleName", physical_name(args.env.stack, "training-failed")]
                    ],
                },
            }
        )
        return {"widgets": widgets}

    def _budget(self, name: str, args: MonitoringArgs) -> None:

        def notify(kind: str, threshold: int) -> aws.budgets.BudgetNotificationArgsDict:
            notice: aws.budgets.BudgetNotificationArgsDict = {
                "comparison_operator": "GREATER_THAN",
                "notification_type": kind,
                "threshold": threshold,
                "threshold_type": "PERCENTAGE",
                "subscriber_sns_topic_arns": [self.topic.arn],
            }
            if args.monitoring.alertEmail:
                notice["subscriber_email_addresses"] = [args.monitoring.alertEmail]
            return notice

        aws.budgets.Budget(
            f"{name}-budget",
            name=physical_name(args.env.stack, "monthly"),
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monitoring.monthlyBudgetUsd:.2f}",
            limit_unit="USD",
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:environment${args.env.stack}"]}],
            notifications=[notify("ACTUAL", 80), notify("FORECASTED", 100)],
            opts=self.child,
        )
