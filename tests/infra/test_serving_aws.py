"""What AWS enforces on hosting that Pulumi's mocks accept: each test names its rule (docs/aws-rules.md).

These run the real program under mocks (infra/preview.py) and read the resource options the engine
acts on (delete-before-replace, retain-on-delete, property dependencies), which the preview records
do not keep; `_options_preview` records them beside each resource.
"""

from __future__ import annotations

import functools
import json

import pytest

import infra.preview as preview_module
from infra.preview import preview_stack
from infra.serving import fleet_size
from kernel.instances import accepts_volume_kms_key
from kernel.stack_config import load_stack_config
from policies.context import PolicyContext
from policies.engine import evaluate
from policies.records import from_preview_graph

APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"
VPC = {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}
BRING_VPC = {"mlops:vpc": VPC, "mlops:network": {"enabled": False}}  # instead of the stack's own network
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"


def staging_serving(**changes):
    """staging's serving section as shipped, with changes."""
    serving = {
        "mode": "instance",
        "instanceType": "ml.m5.xlarge",
        "initialInstanceCount": 1,
        "autoscaling": {"minCapacity": 1, "maxCapacity": 2, "targetInvocationsPerInstance": 200},
        "rollout": {"type": "linear", "stepPercent": 50, "bakeSeconds": 300},
        "dataCaptureSamplingPercent": 100,
    }
    return {**serving, **changes}


SERVERLESS = staging_serving(
    mode="serverless",
    serverlessMemoryMb=3072,
    serverlessMaxConcurrency=5,
    rollout={"type": "all_at_once", "bakeSeconds": 0},
    dataCaptureSamplingPercent=0,
)


@functools.cache
def _options_preview(stack: str, frozen: str):
    """A preview whose records also carry the engine options of each registration."""
    original = preview_module._record

    def record(urn, request, resource_id, props):
        out = original(urn, request, resource_id, props)
        out["options"] = {
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "retainOnDelete": bool(request.retainOnDelete),
            "propertyDependencies": {k: list(v.urns) for k, v in request.propertyDependencies.items()},
        }
        return out

    preview_module._record = record
    try:
        return preview_stack(stack, {"mlops:approvedPackages": {"churn": APPROVED}, **json.loads(frozen)})
    finally:
        preview_module._record = original


def deployed(stack: str, **overrides):
    return _options_preview(stack, json.dumps(overrides, sort_keys=True))


def one(preview, type_token):
    (found,) = [r for r in preview.resources if r["type"] == type_token]
    return found


def violations(preview, rules):
    ctx = PolicyContext.from_stack_config(preview.config)
    result = evaluate(from_preview_graph(preview.resources, preview.outputs), ctx)
    return sorted((v.rule, v.message) for v in result.violations if v.rule in rules)


# --- INSTANCE-STORAGE ----------------------------------------------------------------------


def test_nvme_hosting_sends_no_volume_key_but_capture_keeps_its_key():
    """AWS rule: INSTANCE-STORAGE. g4dn/g5/g6 hosting has no EBS volume: CreateEndpointConfig refuses KmsKeyId."""
    assert not accepts_volume_kms_key("ml.g5.xlarge")
    preview = deployed("staging", **{"mlops:serving": staging_serving(instanceType="ml.g5.xlarge")})
    config = one(preview, CONFIG)["props"]
    assert "kmsKeyArn" not in config
    assert config["dataCaptureConfig"]["kmsKeyId"] == preview.outputs["kmsKeyArn"]
    assert violations(preview, {"sagemaker-endpoint-config-kms"}) == []
    ebs = deployed("staging")  # ml.m5.xlarge has an EBS volume: it keeps the key
    assert one(ebs, CONFIG)["props"]["kmsKeyArn"] == ebs.outputs["kmsKeyArn"]


# --- SERVERLESS-EXCLUSIONS -----------------------------------------------------------------


@pytest.mark.parametrize("stack,overrides", [("dev", {}), ("staging", {"mlops:serving": SERVERLESS})])
def test_serverless_hosting_asks_for_nothing_aws_excludes(stack, overrides):
    """AWS rule: SERVERLESS-EXCLUSIONS. No isolation or VPC on the model, no capture, no blue/green."""
    preview = deployed(stack, **{**BRING_VPC, **overrides})
    model, config, endpoint = one(preview, MODEL)["props"], one(preview, CONFIG)["props"], one(preview, ENDPOINT)
    assert model["enableNetworkIsolation"] is False and "vpcConfig" not in model
    assert "dataCaptureConfig" not in config and "kmsKeyArn" not in config
    assert "serverlessConfig" in config["productionVariants"][0]
    assert "deploymentConfig" not in endpoint["props"]
    assert [r for r in preview.resources if r["type"] == TARGET] == []
    # The policy pack agrees: nothing AWS forbids is demanded of a serverless endpoint.
    demanded = {"sagemaker-model-network-isolation", "sagemaker-model-vpc", "sagemaker-endpoint-data-capture"}
    assert violations(preview, demanded) == []


def test_instance_hosting_keeps_isolation_vpc_and_the_rules_still_catch_it():
    """AWS rule: SERVERLESS-EXCLUSIONS. The exemption is for serverless only: instance models stay isolated."""
    preview = deployed("staging", **BRING_VPC)
    model = one(preview, MODEL)
    assert model["props"]["enableNetworkIsolation"] is True
    assert model["props"]["vpcConfig"]["subnets"] == VPC["subnetIds"]
    model["props"]["enableNetworkIsolation"] = False
    model["props"].pop("vpcConfig")
    try:
        caught = {rule for rule, _ in violations(preview, {"sagemaker-model-network-isolation", "sagemaker-model-vpc"})}
    finally:
        model["props"]["enableNetworkIsolation"] = True
        model["props"]["vpcConfig"] = {"subnets": VPC["subnetIds"], "securityGroupIds": VPC["securityGroupIds"]}
    assert caught == {"sagemaker-model-network-isolation", "sagemaker-model-vpc"}


# --- AUTOSCALING-INSTANCE-CHANGE, AUTOSCALING-INITIAL-COUNT, ENDPOINT-ROLLBACK-KEEPS-CONFIG --

# Inputs whose change the provider cannot apply in place (Terraform's ForceNew): an unknown value
# there makes the engine replace the resource. endpointConfigName is updated in place (UpdateEndpoint).
REPLACED_BY = {TARGET: ("resourceId", "scalableDimension", "serviceNamespace"), POLICY: ("resourceId", "name")}


def deleted_before_replacing(preview, root):
    """What Pulumi deletes, in order, before replacing `root` delete-before-replace: every later
    registration with a replacement-forcing input that depends on something replaced (the
    engine's calculateDependentReplacements), deleted dependents first."""
    replaced, order = {root["urn"]}, []
    for r in preview.resources[preview.resources.index(root) + 1 :]:
        deps = r.get("options", {}).get("propertyDependencies", {})
        if any(set(deps.get(key, ())) & replaced for key in REPLACED_BY.get(r["type"], ())):
            replaced.add(r["urn"])
            order.append(r)
    return [r["type"] for r in reversed(order)]


def test_rollout_deregisters_autoscaling_before_the_endpoint_update():
    """AWS rule: AUTOSCALING-INSTANCE-CHANGE. UpdateEndpoint refuses an instance-type change on a variant
    registered for autoscaling: the scaling policy and target must be gone first, and come back after."""
    preview = deployed("prod")
    config, endpoint, target = one(preview, CONFIG), one(preview, ENDPOINT), one(preview, TARGET)
    assert config["options"]["deleteBeforeReplace"] is True
    assert set(target["options"]["propertyDependencies"]["resourceId"]) == {config["urn"], endpoint["urn"]}
    assert deleted_before_replacing(preview, config) == [POLICY, TARGET]  # never the endpoint
    assert config["urn"] in endpoint["options"]["propertyDependencies"]["endpointConfigName"]
    bigger = deployed("prod", **{"mlops:serving": {**_prod_serving(), "instanceType": "ml.m5.2xlarge"}})
    digest = one(bigger, CONFIG)["props"]["tags"]["content-digest"]
    assert digest != config["props"]["tags"]["content-digest"]  # a new type is a new config: the cascade runs


def _prod_serving():
    s = load_stack_config("prod").serving
    return {
        "mode": s.mode,
        "instanceType": s.instanceType,
        "initialInstanceCount": s.initialInstanceCount,
        "autoscaling": {"minCapacity": 2, "maxCapacity": 8, "targetInvocationsPerInstance": 300},
        "rollout": {"type": "canary", "stepPercent": 10, "bakeSeconds": 600},
        "dataCaptureSamplingPercent": s.dataCaptureSamplingPercent,
    }


def test_new_fleet_starts_at_the_top_of_the_autoscaling_range():
    """AWS rule: AUTOSCALING-INITIAL-COUNT. A deployment builds the green fleet at InitialInstanceCount,
    not at the count autoscaling reached: start it where it can carry any load the blue fleet carried."""
    preview = deployed("prod")
    serving = preview.config.serving
    (variant,) = one(preview, CONFIG)["props"]["productionVariants"]
    assert variant["initialInstanceCount"] == serving.autoscaling.maxCapacity == fleet_size(serving) == 8
    assert one(preview, TARGET)["props"]["minCapacity"] == serving.autoscaling.minCapacity


def test_old_endpoint_configs_are_never_deleted_and_never_collide():
    """AWS rule: ENDPOINT-ROLLBACK-KEEPS-CONFIG. A failed rollout returns the endpoint to its old config,
    which must still exist. Retained configs must not block a rollback to the same content either, so
    each config gets a fresh provider-generated name (a content-derived name would be taken)."""
    for stack in ("dev", "staging", "prod"):
        config = one(deployed(stack), CONFIG)
        assert config["options"]["retainOnDelete"] is True
        assert "name" not in config["props"] and config["props"]["namePrefix"] == f"mlops-{stack}-churn-"
        assert len(config["props"]["namePrefix"]) <= 63 - 26  # the provider appends 26 unique characters


# --- ENDPOINT-MODE-SWITCH ------------------------------------------------------------------


def test_switching_serving_mode_creates_the_new_endpoint_before_deleting_the_old():
    """AWS rule: ENDPOINT-MODE-SWITCH. UpdateEndpoint cannot turn an instance endpoint serverless, so a mode
    switch replaces the endpoint; under a new name the engine creates it first (no delete-before-replace)."""
    instance, serverless = deployed("staging"), deployed("staging", **{"mlops:serving": SERVERLESS})
    old, new = one(instance, ENDPOINT), one(serverless, ENDPOINT)
    assert old["urn"] == new["urn"]  # the same resource in the program: Pulumi replaces it
    assert old["props"]["name"] != new["props"]["name"]  # ... under a new name, so create-before-delete works
    assert not old["options"]["deleteBeforeReplace"] and not new["options"]["deleteBeforeReplace"]
    assert one(instance, MODEL)["props"]["name"] != one(serverless, MODEL)["props"]["name"]
    assert serverless.outputs["endpoints"]["churn"] == new["props"]["name"]
    alarms = [a for a in serverless.resources if a["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"]
    watched = {
        a["props"]["dimensions"].get("EndpointName") for a in alarms if "EndpointName" in a["props"]["dimensions"]
    }
    assert watched == {new["props"]["name"]}
