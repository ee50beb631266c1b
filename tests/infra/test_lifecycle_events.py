"""Lifecycle events reach people: SageMaker's own EventBridge events for this stack's training jobs, model
packages and endpoints each match exactly one rule, which sends the alert topic a sentence built from
the event.

Patterns are matched by moto's implementation of EventBridge pattern matching (`EventPattern`; moto
has no TestEventPattern API), against AWS's documented sample events (tests/infra/data, with their
source) given this stack's names, and against near-misses that must match nothing.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from infra.monitoring import ENDPOINT_EVENT, PACKAGE_EVENT, TRAINING_EVENT
from infra.registry import group_name
from kernel.names import endpoint_name
from kernel.stack_config import load_stack_config

SAMPLES = json.loads((Path(__file__).parent / "data" / "sagemaker_lifecycle_events.json").read_text())
STACKS = ("dev", "staging", "prod", "local")
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


def sample(detail_type: str, **detail) -> dict:
    """AWS's documented sample event of this type, with some of its detail replaced."""
    event = copy.deepcopy(SAMPLES["samples"][detail_type])
    event["detail"].update(detail)
    return event


def ours(stack: str) -> dict[str, dict]:
    """Each lifecycle event type as this stack's resources would send it (one of its models)."""
    config = load_stack_config(stack)
    model = config.models[0]
    return {
        TRAINING_EVENT: sample(TRAINING_EVENT, TrainingJobName=f"mlops-{stack}-{model}-20261129-0712"),
        PACKAGE_EVENT: sample(PACKAGE_EVENT, ModelPackageGroupName=group_name(model, stack)),
        ENDPOINT_EVENT: sample(ENDPOINT_EVENT, EndpointName=endpoint_name(stack, model, config.serving.mode)),
    }


def matching(preview, event) -> list[str]:
    """Names of the stack's EventBridge rules whose pattern matches the event."""
    return [
        r["props"]["name"]
        for r in preview.resources
        if r["type"] == RULE and EventPattern.load(r["props"]["eventPattern"]).matches_event(event)
    ]


def resolve(event: dict, path: str):
    """The value an input transformer's `$.a.b` path selects, or KeyError."""
    value = event
    for key in path.removeprefix("$.").split("."):
        value = value[key]
    return value


@pytest.mark.parametrize(
    "detail_type,statuses",
    [
        (TRAINING_EVENT, {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]}),
        (PACKAGE_EVENT, {"ModelApprovalStatus": ["PendingManualApproval", "Approved", "Rejected"]}),
        (ENDPOINT_EVENT, {"EndpointStatus": ["IN_SERVICE", "FAILED", "UPDATE_ROLLBACK_FAILED"]}),
    ],
)
def test_each_lifecycle_event_of_this_stack_matches_exactly_one_rule(shipped, detail_type, statuses):
    """AWS rule: SAGEMAKER-EVENT-SHAPES. Completed/failed/stopped training, registered/approved/rejected
    packages, endpoints in service after a deployment or failed: one rule each, so one message each."""
    (field, values), event = next(iter(statuses.items())), ours(shipped.stack)[detail_type]
    for value in values:
        assert len(matching(shipped, {**event, "detail": {**event["detail"], field: value}})) == 1, value


def test_training_outcomes_go_to_separate_rules(shipped):
    """Failures keep their own rule: the alarm on its TriggeredRules counts failed jobs only."""
    event = ours(shipped.stack)[TRAINING_EVENT]
    failed = matching(shipped, {**event, "detail": {**event["detail"], "TrainingJobStatus": "Failed"}})
    assert failed == [f"mlops-{shipped.stack}-training-failed"]
    assert matching(shipped, event) == [f"mlops-{shipped.stack}-training-completed"]


@pytest.mark.parametrize(
    "detail_type,near_miss",
    [
        (TRAINING_EVENT, {"TrainingJobStatus": "InProgress"}),
        (PACKAGE_EVENT, {"ModelPackageStatus": "InProgress"}),
        (ENDPOINT_EVENT, {"EndpointStatus": "UPDATING"}),
    ],
)
def test_unsettled_states_and_other_stacks_match_nothing(shipped, detail_type, near_miss):
    """AWS rule: SAGEMAKER-EVENT-SHAPES. Patterns are scoped to this stack and to settled states."""
    event = ours(shipped.stack)[detail_type]
    assert matching(shipped, {**event, "detail": {**event["detail"], **near_miss}}) == []
    assert matching(shipped, SAMPLES["samples"][detail_type]) == []  # AWS's sample names another account's job
    other = "prod" if shipped.stack != "prod" else "staging"
    assert matching(shipped, ours(other)[detail_type]) == []


def test_every_rule_tells_the_topic_what_happened_with_paths_that_exist(shipped):
    """AWS rule: SAGEMAKER-EVENT-SHAPES. Each rule's target is the alert topic with its own input
    transformer; every path it reads exists in AWS's sample event for that rule, and every placeholder
    of the message has a path."""
    rules = {r["props"]["name"]: json.loads(r["props"]["eventPattern"]) for r in shipped.resources if r["type"] == RULE}
    targets = {t["props"]["rule"]: t["props"] for t in shipped.resources if t["type"] == TARGET}
    assert set(targets) == set(rules)
    events = ours(shipped.stack)
    for name, pattern in rules.items():
        target = targets[name]
        assert target["arn"] == shipped.outputs["alertTopicArn"]
        transformer = target["inputTransformer"]
        (detail_type,) = pattern["detail-type"]
        for path in transformer["inputPaths"].values():
            resolve(events[detail_type], path)
        template = transformer["inputTemplate"]
        assert json.loads(template).startswith(f"mlops {shipped.stack}: ")  # a JSON string: SNS sends plain text
        assert set(re.findall(r"<(\w+)>", template)) == set(transformer["inputPaths"])
