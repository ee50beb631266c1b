"""The AWS preflight: what the program declares, checked against what AWS accepts before `pulumi up`.

Model rules come from botocore at run time (kernel.aws_model); documented rules from
kernel.aws_rules. Unit tests feed hand-built requests (fast); the shipped stacks go through the
real preview graph (tests/infra/conftest.py).
"""

import copy

import pytest

from infra.preflight import AUTONAME_SUFFIX, PreflightError, check_resources, requests_of, require_clean
from kernel import aws_rules, names
from kernel.aws_rules import PROVIDER_ENDPOINT_WAIT_SECONDS, Request, check_requests
from kernel.stack_config import ConfigError, parse_config, read_raw_config

KEY = "arn:aws:kms:us-east-1:123456789012:key/f1220eb2-2d10-4aa3-80da-aad419f0ff4a"


def variant(**extra):
    return {"VariantName": "primary", "ModelName": "m", **extra}


def config(variants, **extra):
    return Request(
        "sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": variants, **extra}, "c"
    )


def endpoint(routing, termination=0, timeout=None):
    policy = {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": termination}
    if timeout is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = timeout
    params = {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": {"BlueGreenUpdatePolicy": policy}}
    return Request("sagemaker", "CreateEndpoint", params, "e")


def rules_of(requests):
    return sorted({v.rule for v in check_requests(requests)})


FLEET_OF_4 = config([variant(InstanceType="ml.m5.large", InitialInstanceCount=4)])


# --- documented rules, one by one ----------------------------------------------------------------


def test_instance_storage_volume_key_on_local_nvme_types():
    """AWS rule: INSTANCE-STORAGE"""
    assert rules_of([config([variant(InstanceType="ml.g5.xlarge", InitialInstanceCount=1)], KmsKeyId=KEY)]) == [
        "INSTANCE-STORAGE"
    ]
    assert rules_of([config([variant(InstanceType="ml.m5.large", InitialInstanceCount=1)], KmsKeyId=KEY)]) == []
    job = {"ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeKmsKeyId": KEY}}
    assert rules_of([Request("sagemaker", "CreateTrainingJob", job)]) == ["INSTANCE-STORAGE"]
    job["ResourceConfig"]["InstanceType"] = "ml.p3.2xlarge"
    assert rules_of([Request("sagemaker", "CreateTrainingJob", job)]) == []


def test_serverless_exclusions():
    """AWS rule: SERVERLESS-EXCLUSIONS"""
    serverless = config(
        [variant(ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 5})],
        DataCaptureConfig={"EnableCapture": True},
    )
    model = Request(
        "sagemaker",
        "CreateModel",
        {"ModelName": "m", "EnableNetworkIsolation": True, "VpcConfig": {"Subnets": ["s"], "SecurityGroupIds": ["g"]}},
        "model",
    )
    blue_green = endpoint({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0})
    found = check_requests([serverless, model, blue_green])
    assert sorted(v.path for v in found) == [
        "DataCaptureConfig",
        "DeploymentConfig.BlueGreenUpdatePolicy",
        "EnableNetworkIsolation",
        "VpcConfig",
    ]
    assert {v.rule for v in found} == {"SERVERLESS-EXCLUSIONS"}
    assert all("serverless-endpoints.html" in v.message for v in found)
    instance_model = Request("sagemaker", "CreateModel", {"ModelName": "m", "EnableNetworkIsolation": True}, "model")
    assert rules_of([FLEET_OF_4, instance_model, blue_green]) == []


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ({"Type": "CAPACITY_PERCENT", "Value": 50}, True),
        ({"Type": "CAPACITY_PERCENT", "Value": 51}, False),
        ({"Type": "INSTANCE_COUNT", "Value": 2}, True),  # 2 of 4
        ({"Type": "INSTANCE_COUNT", "Value": 3}, False),  # 3 of 4
    ],
)
def test_canary_is_at_most_half_the_fleet(size, ok):
    """AWS rule: BLUEGREEN-CANARY"""
    routing = {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": size}
    assert rules_of([FLEET_OF_4, endpoint(routing)]) == ([] if ok else ["BLUEGREEN-CANARY"])


@pytest.mark.parametrize(("value", "ok"), [(5, False), (10, True), (50, True), (60, False)])
def test_linear_step_is_10_to_50_percent(value, ok):
    """AWS rule: BLUEGREEN-LINEAR"""
    routing = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 60,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": value},
    }
    assert rules_of([FLEET_OF_4, endpoint(routing)]) == ([] if ok else ["BLUEGREEN-LINEAR"])


def test_waits_fit_the_provider_waiter_and_the_timeout_covers_the_rollout():
    """AWS rule: BLUEGREEN-WAITS"""
    canary = {"Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    assert rules_of([FLEET_OF_4, endpoint(canary, termination=600, timeout=3600)]) == []
    too_long = check_requests([FLEET_OF_4, endpoint(canary, termination=600, timeout=13800)])
    assert [v.path for v in too_long] == ["DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds"]
    assert (
        "terraform-provider-aws" in too_long[0].message and str(PROVIDER_ENDPOINT_WAIT_SECONDS) in too_long[0].message
    )
    # 10 linear steps of 300 s + 600 s termination wait = 3600 s: as long as the provider waits, so it fails
    linear = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 300,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert rules_of([FLEET_OF_4, endpoint(linear, termination=600)]) == ["BLUEGREEN-WAITS"]
    short_timeout = check_requests([FLEET_OF_4, endpoint(canary, termination=600, timeout=900)])
    assert ["roll back" in v.allowed for v in short_timeout] == [True]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("mlops-dev-data-123456789012", True),
        ("Mlops-dev", False),
        ("mlops_dev", False),
        ("ab", False),
        ("a" * 64, False),
        ("xn--bucket", False),
        ("bucket-s3alias", False),
        ("192.168.5.4", False),
        ("a..b", False),
    ],
)
def test_s3_bucket_names(name, ok):
    """AWS rule: NAME-LENGTHS"""
    found = check_requests([Request("s3", "CreateBucket", {"Bucket": name}, "bucket")])
    assert (found == []) is ok
    assert all(v.rule == "NAME-LENGTHS" and "bucketnamingrules" in v.message for v in found)


def test_sns_topic_names():
    """AWS rule: NAME-LENGTHS"""
    assert check_requests([Request("sns", "CreateTopic", {"Name": "mlops-dev-alerts"})]) == []
    assert [v.rule for v in check_requests([Request("sns", "CreateTopic", {"Name": "mlops.dev"})])] == ["NAME-LENGTHS"]


def test_every_rule_in_the_table_has_an_id_a_rule_and_a_source():
    for rule in aws_rules.RULES:
        assert rule.id.isupper() and rule.rule and rule.url.startswith("https://") and callable(rule.check)


# --- the preview graph mapped to requests ---------------------------------------------------------


def _record(type_, name, props):
    return {"urn": f"urn:pulumi:dev::mlops::{type_}::{name}", "type": type_, "name": name, "props": props}


def test_records_map_to_requests_and_problems_name_the_path_and_source():
    """AWS rule: BOTOCORE-MODEL"""
    bad = _record(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "serving-churn-config",
        {
            "name": "mlops-dev-churn-4d949d2e",
            "arn": "ignored: an output, not an input",
            "productionVariants": [
                {"variantName": "primary", "modelName": "m", "instanceType": "ml.m5.huge", "initialInstanceCount": 1.0}
            ],
        },
    )
    (request,) = requests_of([bad])
    assert (request.service, request.operation) == ("sagemaker", "CreateEndpointConfig")
    assert request.params["ProductionVariants"][0]["InitialInstanceCount"] == 1.0 and "arn" not in str(request.params)
    (finding,) = check_resources([bad])
    assert finding.rule == "BOTOCORE-MODEL" and finding.urn == bad["urn"]
    assert "ProductionVariants[0].InstanceType: 'ml.m5.huge'" in finding.message
    assert "botocore sagemaker CreateEndpointConfig" in finding.message


def test_unknown_values_are_skipped_not_guessed():
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    record = _record("aws:sagemaker/endpoint:Endpoint", "e", {"name": "mlops-dev-churn", "endpointConfigName": unknown})
    assert check_resources([record]) == []


def test_a_resource_without_a_physical_name_is_checked_under_its_pulumi_autoname():
    """AWS rule: NAME-LENGTHS"""
    record = _record("aws:iam/rolePolicy:RolePolicy", "p" * 125, {"role": "r", "policy": "{}"})
    (request,) = requests_of([record])
    assert request.params["PolicyName"] == "p" * 125 + AUTONAME_SUFFIX
    (finding,) = check_resources([record])
    assert "PolicyName" in finding.message and "1-128 characters" in finding.message


def test_require_clean_raises_with_every_finding():
    bucket = _record("aws:s3/bucket:Bucket", "b", {"bucket": "Bad_Bucket"})
    with pytest.raises(PreflightError, match="Bad_Bucket") as caught:
        require_clean("dev", [bucket])
    assert caught.value.findings and "NAME-LENGTHS" in str(caught.value)


# --- the shipped stacks -----------------------------------------------------------------------------


def test_shipped_stacks_pass_the_preflight(shipped):
    assert [f.message for f in check_resources(shipped.resources)] == []


def test_deployed_stacks_pass_the_preflight(deployed):
    """AWS rule: SERVERLESS-EXCLUSIONS (dev) and BLUEGREEN-WAITS (prod) failed here before the serving fixes."""
    assert [f.message for f in check_resources(deployed.resources)] == []


def test_local_nvme_hosting_sends_no_volume_key(preview_of):
    """AWS rule: INSTANCE-STORAGE"""
    from infra.preview import preview_stack

    serving = {**read_raw_config("staging")[1]["mlops:serving"], "instanceType": "ml.g5.xlarge"}
    approved = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"
    preview = preview_stack("staging", {"mlops:serving": serving, "mlops:approvedPackages": {"churn": approved}})
    assert [f.rule for f in check_resources(preview.resources)] == []


def test_derived_name_templates_match_what_the_program_declares(deployed):
    """kernel.names mirrors the components: every name it derives is one the program really declares."""
    declared = set()
    for r in deployed.resources:
        for key in ("name", "bucket", "modelPackageGroupName", "dashboardName"):
            if isinstance(r["props"].get(key), str):
                declared.add(r["props"][key])
    hashed = names.CONTENT_HASH_LENGTH
    for derived in names.derived_names(deployed.stack, deployed.config.models, deployed.config.serving.mode):
        if derived.operation == "PutScalingPolicy" and deployed.config.serving.mode == "serverless":
            continue  # only instance endpoints scale
        if derived.unique_suffix:  # a name prefix the provider completes
            prefix = derived.name[: -derived.unique_suffix]
            assert any(r["props"].get("namePrefix") == prefix for r in deployed.resources), derived
        elif derived.model and "0" * hashed in derived.name:  # content-hashed: compare the prefix
            prefix = derived.name[: -hashed - 1]
            assert any(d.startswith(prefix + "-") and len(d) == len(derived.name) for d in declared), derived
        else:
            assert derived.name in declared, derived


# --- config-level: a bad stack stops before any resource --------------------------------------------


def test_a_rollout_aws_refuses_stops_the_program_before_any_resource(registrations):
    """AWS rule: BLUEGREEN-CANARY"""
    from infra.preview import preview_stack

    serving = copy.deepcopy(read_raw_config("prod")[1]["mlops:serving"])
    serving["rollout"]["stepPercent"] = 60
    with pytest.raises(ConfigError) as caught:
        preview_stack("prod", {"mlops:serving": serving})
    assert registrations == []
    message = str(caught.value)
    for fragment in (
        "mlops:serving.rollout.stepPercent: 60",
        "1-50",
        "BLUEGREEN-CANARY",
        "API_TrafficRoutingConfig.html",
    ):
        assert fragment in message


def test_the_program_itself_refuses_a_stack_name_that_derives_invalid_names():
    """AWS rule: NAME-LENGTHS"""
    raw = read_raw_config("dev")[1]
    with pytest.raises(ConfigError) as caught:
        parse_config("a-very-long-stack-name-for-an-experiment", raw)
    message = str(caught.value)
    assert "stack: 'a-very-long-stack-name-for-an-experiment'" in message
    assert "S3 bucket (access-logs) name" in message and "3-63 characters" in message and "bucketnamingrules" in message


# --- the commands -----------------------------------------------------------------------------------


def test_mlops_preview_exits_non_zero_when_aws_would_refuse(monkeypatch, capsys):
    from ci.cli import main
    from infra import preflight
    from infra.preflight import Finding

    monkeypatch.setattr(
        preflight, "check_preview", lambda preview: [Finding("BLUEGREEN-CANARY", "e", "e: CanarySize ... (AWS rule X)")]
    )
    assert main(["preview", "--stack", "dev"]) == 1
    assert "AWS would refuse 1 request(s)" in capsys.readouterr().err
    assert main(["preview", "--stack", "dev", "--skip-preflight"]) == 0


def test_mlops_preview_of_a_shipped_stack_passes(capsys):
    from ci.cli import main

    assert main(["preview", "--stack", "staging"]) == 0
    assert "AWS would refuse" not in capsys.readouterr().err


def test_mlops_audit_fails_on_a_preflight_finding(monkeypatch, capsys):
    from ci.cli import main
    from policies import audit

    monkeypatch.setattr(audit, "preflight", lambda target: ["x (aws:s3/bucket:Bucket): Bucket: 'X' is not valid"])
    assert main(["audit", "--stack", "dev"]) == 1
    assert "AWS preflight: x (aws:s3/bucket:Bucket)" in capsys.readouterr().err


def test_a_recorded_stack_export_passes_the_audit_preflight():
    """A real `pulumi stack export` (pulumi-aws's recorded tests): outputs read back are not requests."""
    from policies.audit import preflight, target_from_state
    from tests.policies.policy_testkit import FIXTURES

    for fixture in ("ecr-repository.json", "kms-key.json"):
        assert preflight(target_from_state(FIXTURES / fixture)) == []
