"""SNS and CloudWatch: alerts that are encrypted, alarms that notify someone, logs that expire and are encrypted."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.aws_model import UNKNOWN
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, listify, number, truthy
from policies.records import Resource
from policies.rules.base import RuleFamily, say

MONITORING = RuleFamily("monitoring")

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
AWS_MANAGED_SNS_KEY = "alias/aws/sns"


@MONITORING.resource("sns-topic-encrypted", severity="medium", types=(TOPIC,))
def sns_topic_encrypted(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """SNS topics encrypt messages with a customer-managed KMS key.

    Why: Alerts carry endpoint names, drift scores and budget figures; and CloudWatch alarms cannot publish to a topic
    encrypted with the AWS-managed aws/sns key, so that choice silently drops every alarm.

    Fix: set kms_master_key_id to the environment key (whose policy lets cloudwatch.amazonaws.com use it).
    """
    key = resource.props.get("kmsMasterKeyId")
    if not key:
        yield say(resource, "topic is not encrypted", "set kms_master_key_id to the environment key")
    elif key is not UNKNOWN and str(key) == AWS_MANAGED_SNS_KEY:
        yield say(
            resource,
            "topic uses the AWS-managed aws/sns key, which CloudWatch alarms cannot publish to",
            "use the environment's customer-managed key",
        )


@MONITORING.resource(
    "sns-topic-policy-no-public", severity="high", types=(TOPIC, TOPIC_POLICY), blind_spots=("policy",)
)
def sns_topic_policy_no_public(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """SNS topic policies do not let everyone publish or subscribe.

    Why: A topic anyone can publish to can page the on-call with forged alarms; one anyone can subscribe to leaks every
    alert.

    Fix: name the publishing services (cloudwatch, events, budgets) and scope with aws:SourceAccount.
    """
    for s in iam_docs.open_to_everyone(resource.props.get("policy")):
        yield say(
            resource,
            f"topic policy {s.label} allows {', '.join(s.actions)} to Principal '*'",
            "name the service principals and add an aws:SourceAccount condition",
        )


@MONITORING.resource("cloudwatch-alarm-has-action", severity="medium", types=(ALARM,))
def cloudwatch_alarm_has_action(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Every CloudWatch alarm notifies or acts when it fires.

    Why: An alarm without an action changes colour on a dashboard nobody watches at 3 a.m.

    Fix: set alarm_actions=[<the stack's alert topic>] and leave actions_enabled on.
    """
    if resource.props.get("actionsEnabled") is not None and not truthy(resource.props.get("actionsEnabled")):
        yield say(resource, "has its actions disabled", "set actions_enabled=True")
    elif not listify(resource.props.get("alarmActions")):
        yield say(resource, "has no alarm action", "set alarm_actions to the stack's alert topic")


@MONITORING.resource("cloudwatch-log-group-retention", severity="low", types=(LOG_GROUP,))
def cloudwatch_log_group_retention(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Log groups expire their events.

    Why: CloudWatch keeps logs forever by default: cost grows without bound, and logs may hold request payloads that
    must not outlive their retention period.

    Fix: set retention_in_days (retention.logDays in the stack config).
    """
    days = resource.props.get("retentionInDays")
    if days is UNKNOWN:
        return
    value = number(days)
    if value is None or value <= 0:
        yield say(resource, "keeps events forever", "set retention_in_days")


@MONITORING.resource("cloudwatch-log-group-kms", severity="medium", types=(LOG_GROUP,))
def cloudwatch_log_group_kms(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Log groups encrypt events with a customer-managed KMS key.

    Why: Pipeline and endpoint logs can contain feature values and stack traces with data; the environment key keeps
    them under the same control as the data itself.

    Fix: set kms_key_id to the environment key (its policy must allow logs.<region>.amazonaws.com).
    """
    if not resource.props.get("kmsKeyId"):
        yield say(resource, "is not encrypted with a KMS key", "set kms_key_id to the environment key")
