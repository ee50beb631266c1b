"""The pack as the Pulumi engine sees it: start `policies/__main__.py`, talk to its analyzer over gRPC.

There is no Pulumi CLI here, so this plays the engine's part: read the port the pack prints,
ask for its policies, configure it the way `--policy-pack-config` would, and send resources.
"""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from policy_testkit import REPO
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.rules import RULES


def _struct(value: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen(
        [sys.executable, str(REPO / "policies" / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO / "policies",
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the pack printed {port!r}; stderr: {process.stderr.read() if process.poll() else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


def test_pack_lists_every_rule(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlops-sagemaker"
    assert {p.name for p in info.policies} == {r.id for r in RULES}


def test_pack_configured_for_prod_reports_an_unrotated_key_as_mandatory(analyzer):
    config = {
        "kms-key-rotation": analyzer_pb2.PolicyConfig(
            enforcementLevel=1, properties=_struct({"environment": "prod", "requiredTags": ["owner"]})
        )
    }  # 1: MANDATORY
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=config))
    request = analyzer_pb2.AnalyzeRequest(
        type="aws:kms/key:Key",
        urn="urn:pulumi:prod::mlops::aws:kms/key:Key::storage-key",
        name="storage-key",
        properties=_struct({"enableKeyRotation": False, "tags": {"owner": "me"}}),
    )
    diagnostics = analyzer.Analyze(request).diagnostics
    rotation = [d for d in diagnostics if d.policyName == "kms-key-rotation"]
    assert len(rotation) == 1 and rotation[0].enforcementLevel == 1 and "rotation is off" in rotation[0].message
    compliant = analyzer_pb2.AnalyzeRequest(
        type=request.type,
        urn=request.urn,
        name=request.name,
        properties=_struct({"enableKeyRotation": True, "tags": {"owner": "me"}}),
    )
    assert [d.policyName for d in analyzer.Analyze(compliant).diagnostics] == []


def test_pack_stack_analysis_finds_an_alarm_without_variant_dimension(analyzer):
    def resource(type_, name, props):
        return analyzer_pb2.AnalyzerResource(
            type=type_, name=name, urn=f"urn:pulumi:prod::mlops::{type_}::{name}", properties=_struct(props)
        )

    resources = [
        resource(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "cfg",
            {
                "name": "cfg",
                "kmsKeyArn": "arn:k",
                "productionVariants": [{"variantName": "primary", "instanceType": "ml.m5.large", "modelName": "m"}],
            },
        ),
        resource("aws:sagemaker/endpoint:Endpoint", "ep", {"name": "ep", "endpointConfigName": "cfg"}),
        resource(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "errors",
            {
                "name": "errors",
                "namespace": "AWS/SageMaker",
                "metricName": "Invocation5XXErrors",
                "dimensions": {"EndpointName": "ep"},
                "alarmActions": ["arn:t"],
            },
        ),
    ]
    diagnostics = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources)).diagnostics
    by_policy = {d.policyName: d for d in diagnostics}
    assert "VariantName" in by_policy["sagemaker-endpoint-5xx-alarm"].message
    assert by_policy["sagemaker-endpoint-5xx-alarm"].urn.endswith("::ep")
    assert "has no latency alarm" in by_policy["sagemaker-endpoint-latency-alarm"].message
