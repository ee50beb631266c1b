"""Tags: every taggable resource says which environment, owner and cost centre it belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kernel.aws_model import UNKNOWN
from policies.context import PolicyContext
from policies.graph import StackGraph, first, listify
from policies.records import Resource
from policies.rules.base import RuleFamily, say

TAGS = RuleFamily("tags")

# Resource types of the platform that take tags (pulumi-aws v7; V2 tokens fold onto these).
TAGGABLE = (
    "aws:kms/key:Key",
    "aws:s3/bucket:Bucket",
    "aws:ecr/repository:Repository",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    "aws:sagemaker/model:Model",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "aws:sagemaker/endpoint:Endpoint",
    "aws:iam/role:Role",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:iam/policy:Policy",
    "aws:sns/topic:Topic",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:budgets/budget:Budget",
    "aws:appautoscaling/target:Target",
)


def effective_tags(resource: Resource, graph: StackGraph) -> Mapping[str, Any] | None:
    """The resource's tags, what the provider reported (`tagsAll`) and the provider's default tags."""
    tags: dict[str, Any] = {}
    provider = graph.provider_of(resource)
    if provider is not None:
        for block in listify(_decoded(provider.props.get("defaultTags"))):
            inner = first(block, "tags") if isinstance(block, Mapping) else None
            if inner is UNKNOWN:
                return None
            if isinstance(inner, Mapping):
                tags.update(inner)
    for key in ("tagsAll", "tags"):
        value = resource.props.get(key)
        if value is UNKNOWN:
            return None
        if isinstance(value, Mapping):
            tags.update(value)
    return tags


def _decoded(value: Any) -> Any:
    """A provider's object-valued settings travel as JSON text (`"defaultTags": "{\\"tags\\": ...}"`)
    in the engine's wire form, in state exports and under the mocks alike."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


@TAGS.resource("tags-required", severity="low", types=TAGGABLE, needs=("required_tags",))
def tags_required(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Taggable resources carry the stack's required tags (environment, owner, cost-center, ...).

    Why: The cost budget filters on the environment tag and cost reports group by owner and cost-center: an untagged GPU
    endpoint is spend nobody is accountable for.

    Fix: create the resource through the stack's provider (infra.environment.aws_provider), whose default_tags carry
    infra.environment.resource_tags(config).
    """
    tags = effective_tags(resource, graph)
    if tags is None:
        return
    missing = [k for k in ctx.required_tags if not str(tags.get(k) or "").strip()]
    if missing:
        yield say(resource, f"lacks required tag(s) {', '.join(missing)}", f"tag it with {', '.join(missing)}")
