"""How SageMaker resources hang together in a resource graph: endpoint -> config -> variants -> model,
autoscaling targets, alarms. Shared by the SageMaker rules and the cost estimator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from kernel.aws_model import UNKNOWN
from kernel.instances import GPU_PREFIXES
from policies.graph import StackGraph, first, listify, number
from policies.records import Resource

MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
PACKAGE_GROUP_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
SCALING_TARGET = "aws:appautoscaling/target:Target"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def physical_name(resource: Resource) -> str:
    name = resource.props.get("name")
    if isinstance(name, str) and name:
        return name
    return resource.id or ""


def variants(config: Resource) -> list[Mapping[str, Any]]:
    return [v for v in listify(config.props.get("productionVariants")) if isinstance(v, Mapping)]


def is_serverless(variant: Mapping[str, Any]) -> bool:
    return bool(listify(variant.get("serverlessConfig"))) and not variant.get("instanceType")


# GPUs (the kernel's) and AWS's own accelerators (Inferentia, Trainium): instances that bill like a GPU.
ACCELERATOR_PREFIXES = (*GPU_PREFIXES, "ml.inf", "ml.trn")


def is_accelerated(instance_type: str) -> bool:
    return instance_type.startswith(ACCELERATOR_PREFIXES)


def config_of(endpoint: Resource, graph: StackGraph) -> Resource | None:
    """The endpoint configuration an endpoint points at (by name; by dependency while unknown)."""
    wanted = endpoint.props.get("endpointConfigName")
    configs = graph.of_type(ENDPOINT_CONFIG)
    if wanted is UNKNOWN or wanted is None:
        linked = [c for c in configs if c.urn in endpoint.dependencies]
        return linked[0] if len(linked) == 1 else None
    for c in configs:
        if str(wanted) in {physical_name(c), c.id} - {""}:
            return c
    return None


def endpoints_using(config: Resource, graph: StackGraph) -> list[Resource]:
    return [e for e in graph.of_type(ENDPOINT) if config_of(e, graph) is config]


def models_served_only_serverless(model: Resource, graph: StackGraph) -> bool:
    """Is this model served, and only by serverless variants (which take no VPC or volume key)?"""
    name = physical_name(model)
    served = [
        v
        for c in graph.of_type(ENDPOINT_CONFIG)
        for v in variants(c)
        if v.get("modelName") in (name, UNKNOWN) or (v.get("modelName") is UNKNOWN and model.urn in c.dependencies)
    ]
    return bool(served) and all(is_serverless(v) for v in served)


def scaling_minimum(graph: StackGraph, endpoint_name: str, variant_name: str) -> float | None:
    """minCapacity of the Application Auto Scaling target of one endpoint variant, if any."""
    wanted = f"endpoint/{endpoint_name}/variant/{variant_name}"
    for t in graph.of_type(SCALING_TARGET):
        if t.props.get("serviceNamespace") not in ("sagemaker", UNKNOWN, None):
            continue
        if t.props.get("resourceId") == wanted or t.id == wanted:
            return number(t.props.get("minCapacity"))
    return None


class AlarmMetric(NamedTuple):
    """A metric an alarm watches: the alarm's own, or one of its metric queries'."""

    alarm: Resource
    namespace: str
    metric: str
    dimensions: Mapping[str, Any]


def alarm_metrics(graph: StackGraph) -> list[AlarmMetric]:
    """Every metric an alarm watches: the alarm's own metric, or each metric of its metric queries."""
    out: list[AlarmMetric] = []
    for alarm in graph.of_type(ALARM):
        p = alarm.props
        if p.get("metricName"):
            out.append(
                AlarmMetric(
                    alarm,
                    str(p.get("namespace") or ""),
                    str(p.get("metricName")),
                    dims if isinstance(dims := p.get("dimensions"), Mapping) else {},
                )
            )
        for query in listify(p.get("metricQueries")):
            metric = first(query, "metric") if isinstance(query, Mapping) else None
            for m in listify(metric):
                if isinstance(m, Mapping) and m.get("metricName"):
                    dims = m.get("dimensions")
                    out.append(
                        AlarmMetric(
                            alarm,
                            str(m.get("namespace") or ""),
                            str(m.get("metricName")),
                            dims if isinstance(dims, Mapping) else {},
                        )
                    )
    return out


def alarm_name(alarm: Resource) -> str:
    return physical_name(alarm)
