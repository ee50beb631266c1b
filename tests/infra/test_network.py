"""staging and prod train and serve in a private network; dev does not; bad network config is refused."""

import json

import pytest

from infra.network import INTERFACE_SERVICES, ecr_layer_bucket
from infra.preview import ACCOUNT_ID, preview_stack
from kernel.stack_config import ConfigError, load_stack_config

PRIVATE = ("staging", "prod")
APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"  # as in conftest.py
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def _one(preview, type_token):
    (record,) = preview.of_type(type_token)
    return record


def _subnets(preview):
    """The private subnets in zone order (registration order is not declaration order)."""
    return sorted(preview.of_type("aws:ec2/subnet:Subnet"), key=lambda s: s["name"])


def _endpoints(preview):
    return {r["props"]["serviceName"].split(".", 3)[-1]: r for r in preview.of_type(ENDPOINT)}


@pytest.mark.parametrize("stack", PRIVATE)
def test_private_subnets_in_distinct_zones_and_no_internet_route(preview_of, stack):
    """AWS rule: VPC-ENDPOINT-PRIVATE-DNS. The VPC resolves endpoints' private names; nothing routes out."""
    preview = preview_of(stack, True)
    vpc = _one(preview, "aws:ec2/vpc:Vpc")
    assert vpc["props"]["enableDnsSupport"] and vpc["props"]["enableDnsHostnames"]
    subnets = preview.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) >= 2
    assert len({s["props"]["availabilityZone"] for s in subnets}) == len(subnets)
    assert not any(s["props"].get("mapPublicIpOnLaunch") for s in subnets)
    types = {r["type"] for r in preview.resources}
    assert not types & {
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/route:Route",
    }
    assert not any(r["props"].get("routes") for r in preview.of_type("aws:ec2/routeTable:RouteTable"))


@pytest.mark.parametrize("stack", PRIVATE)
def test_every_service_has_an_endpoint_limited_to_this_account(preview_of, stack):
    """AWS rule: VPC-ENDPOINTS-FOR-SAGEMAKER. With no internet route, S3 through a gateway endpoint on
    every private route table, every API training and hosting call through an interface endpoint."""
    preview = preview_of(stack, True)
    endpoints = _endpoints(preview)
    assert set(endpoints) == {"s3", *INTERFACE_SERVICES.values()}
    tables = {t["id"] for t in preview.of_type("aws:ec2/routeTable:RouteTable")}
    s3 = endpoints.pop("s3")["props"]
    assert s3["vpcEndpointType"] == "Gateway" and set(s3["routeTableIds"]) == tables
    subnets = {s["id"] for s in preview.of_type("aws:ec2/subnet:Subnet")}
    for service, record in [("s3", {"props": s3}), *endpoints.items()]:
        props = record["props"]
        if service != "s3":
            assert props["vpcEndpointType"] == "Interface" and props["privateDnsEnabled"], service
            assert set(props["subnetIds"]) == subnets, service
        mine = [s for s in json.loads(props["policy"])["Statement"] if s["Sid"] == "ThisAccountsPrincipalsOnly"]
        assert mine[0]["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}}, service
    assert endpoints["sns"]["props"]["policy"].count(f":{ACCOUNT_ID}:mlops-{stack}-*") == 1


def test_ecr_image_layers_pass_the_s3_endpoint(preview_of):
    """AWS rule: ECR-LAYERS-VIA-S3. Layers come from ECR's own bucket through presigned URLs."""
    policy = json.loads(_endpoints(preview_of("prod", True))["s3"]["props"]["policy"])
    (layers,) = [s for s in policy["Statement"] if s["Sid"] == "EcrImageLayers"]
    assert layers["Action"] == "s3:GetObject" and layers["Resource"] == ecr_layer_bucket("us-east-1")
    assert layers["Resource"] == "arn:aws:s3:::prod-us-east-1-starport-layer-bucket/*"


def test_security_groups_admit_only_https_from_the_workloads(preview_of):
    """AWS rule: VPC-DISTRIBUTED-TRAINING-SG. Endpoints: 443 from workloads only; workloads: 443 to the
    endpoints and S3's prefix list, and anything among themselves (one distributed training job)."""
    preview = preview_of("prod", True)
    groups = {r["name"]: r["id"] for r in preview.of_type("aws:ec2/securityGroup:SecurityGroup")}
    workload, endpoints = groups["network-workload-sg"], groups["network-endpoints-sg"]
    rules = [
        (r["type"].rsplit(":", 1)[-1], r["props"])
        for r in preview.resources
        if r["type"].startswith("aws:vpc/securityGroup")
    ]
    s3_prefix_list = _endpoints(preview)["s3"]["props"]["prefixListId"]
    summary = sorted(
        (kind, p["securityGroupId"], p.get("referencedSecurityGroupId") or p.get("prefixListId"), p.get("toPort"))
        for kind, p in rules
    )
    assert summary == sorted(
        [
            ("SecurityGroupIngressRule", endpoints, workload, 443.0),
            ("SecurityGroupEgressRule", workload, endpoints, 443.0),
            ("SecurityGroupEgressRule", workload, s3_prefix_list, 443.0),
            ("SecurityGroupIngressRule", workload, workload, None),
            ("SecurityGroupEgressRule", workload, workload, None),
        ]
    )
    assert not any(p.get("cidrIpv4") or p.get("cidrIpv6") for _, p in rules)
    default = _one(preview, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")["props"]
    assert not default.get("ingress") and not default.get("egress")


def test_flow_logs_go_to_a_key_encrypted_log_group(preview_of):
    preview = preview_of("prod", True)
    flow = _one(preview, "aws:ec2/flowLog:FlowLog")["props"]
    groups = {g["props"]["arn"]: g["props"] for g in preview.of_type("aws:cloudwatch/logGroup:LogGroup")}
    group = groups[flow["logDestination"]]
    assert flow["trafficType"] == "ALL" and flow["vpcId"] == _one(preview, "aws:ec2/vpc:Vpc")["id"]
    assert group["kmsKeyId"] == preview.outputs["kmsKeyArn"]
    assert group["retentionInDays"] == preview.config.retention.logDays
    role = next(r for r in preview.of_type("aws:iam/role:Role") if r["props"]["arn"] == flow["iamRoleArn"])
    trust = json.loads(role["props"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}


@pytest.mark.parametrize("stack", PRIVATE)
def test_training_and_instance_hosting_run_in_the_network(preview_of, stack):
    preview = preview_of(stack, True)
    subnets = [s["id"] for s in _subnets(preview)]  # in zone order, as the outputs list them
    workload = next(r["id"] for r in preview.of_type("aws:ec2/securityGroup:SecurityGroup") if "workload" in r["name"])
    assert preview.outputs["trainingDefaults"]["vpc"] == {"subnetIds": subnets, "securityGroupIds": [workload]}
    model = _one(preview, "aws:sagemaker/model:Model")["props"]
    assert model["vpcConfig"] == {"subnets": subnets, "securityGroupIds": [workload]}
    assert model["enableNetworkIsolation"] is True
    execution = next(r for r in preview.of_type("aws:iam/rolePolicy:RolePolicy") if "execution" in r["name"])
    assert "RunInsideTheVpc" in execution["props"]["policy"]  # SageMaker makes the ENIs as the role


def test_model_name_is_stable_and_carries_the_network_ids(preview_of):
    """The subnet ids are known only once created: the name hashes them, never an Output's repr."""
    model = _one(preview_of("prod", True), "aws:sagemaker/model:Model")["props"]
    again = _one(preview_stack("prod", {"mlops:approvedPackages": {"churn": APPROVED}}), "aws:sagemaker/model:Model")
    assert model["name"] == again["props"]["name"]
    zones = ["us-east-1a", "us-east-1c", "us-east-1d"]
    network = {"enabled": True, "cidr": "10.9.0.0/16", "azs": 3, "availabilityZones": zones}
    other = preview_stack("prod", {"mlops:approvedPackages": {"churn": APPROVED}, "mlops:network": network})
    assert _one(other, "aws:sagemaker/model:Model")["props"]["name"] != model["name"]
    subnets = _subnets(other)
    assert [s["props"]["availabilityZone"] for s in subnets] == zones
    assert [s["props"]["cidrBlock"] for s in subnets] == ["10.9.0.0/20", "10.9.16.0/20", "10.9.32.0/20"]


def test_dev_and_local_have_no_network_and_serverless_models_no_vpc(preview_of):
    """AWS rule: SERVERLESS-EXCLUSIONS. Even with the network on, a serverless model takes no VPC."""
    for stack in ("dev", "local"):
        preview = preview_of(stack, True)
        assert not [r for r in preview.resources if r["type"].startswith(("aws:ec2/", "aws:vpc/"))], stack
        assert preview.outputs["trainingDefaults"]["vpc"] == {"subnetIds": [], "securityGroupIds": []}
    opted_in = preview_stack("dev", {"mlops:approvedPackages": {"churn": APPROVED}, "mlops:network": {"enabled": True}})
    assert len(opted_in.of_type("aws:ec2/subnet:Subnet")) == 2
    assert len(opted_in.outputs["trainingDefaults"]["vpc"]["subnetIds"]) == 2
    assert not _one(opted_in, "aws:sagemaker/model:Model")["props"].get("vpcConfig")


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            {"enabled": True, "cidr": "10.0.0.0/8"},
            "mlops:network.cidr: '10.0.0.0/8' is not valid; a VPC block is /16 to /28",
        ),
        ({"enabled": True, "cidr": "10.0.0.0/26"}, "AWS rule VPC-CIDR-SIZE, source: https://docs.aws.amazon.com/vpc/"),
        ({"enabled": True, "cidr": "52.0.0.0/16"}, "use a private (RFC 1918) block"),
        ({"enabled": True, "cidr": "10.0.0.1/16"}, "no host bits"),
        ({"enabled": True, "azs": 1}, "mlops:network.azs: 1 is not valid; expected between 2 and 3"),
        ({"enabled": True, "availabilityZones": ["eu-west-1a", "us-east-1b"]}, "expected a zone of us-east-1"),
        ({"enabled": "yes"}, "mlops:network.enabled: 'yes' is not valid; expected true or false"),
        ({"enabled": True, "subnets": 2}, "mlops:network.subnets: unknown key"),
    ],
)
def test_a_bad_network_is_refused_before_any_resource(network, message):
    """AWS rule: VPC-CIDR-SIZE. The preview fails in config validation, before the program runs."""
    with pytest.raises(ConfigError) as err:
        preview_stack("prod", {"mlops:network": network})
    assert message in str(err.value)


def test_own_network_and_a_brought_vpc_exclude_each_other():
    vpc = {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}
    with pytest.raises(ConfigError, match="use one: the stack's own network or your VPC"):
        load_stack_config("prod", {"mlops:vpc": vpc})
    with pytest.raises(ConfigError, match="local stack runs against an emulator"):
        load_stack_config("local", {"mlops:network": {"enabled": True}})
    brought = load_stack_config("prod", {"mlops:vpc": vpc, "mlops:network": {"enabled": False}})
    assert brought.private_network and not brought.network.enabled
    # Without the key, staging and prod get the network by default, unless they bring a VPC.
    assert load_stack_config("prod", {"mlops:network": None}).network.enabled is True
    assert load_stack_config("staging", {"mlops:network": None}).network.cidr == "10.0.0.0/16"
    assert load_stack_config("staging", {"mlops:network": {"cidr": "10.5.0.0/16"}}).network.enabled is True
    assert load_stack_config("dev").network.enabled is False


def _perimeter(preview, purpose):
    record = next(r for r in preview.of_type("aws:s3/bucketPolicy:BucketPolicy") if r["name"] == f"storage-{purpose}")
    return [
        s for s in json.loads(record["props"]["policy"])["Statement"] if s["Sid"] == "DenyObjectAccessOffTheNetwork"
    ]


@pytest.mark.parametrize("stack", PRIVATE)
def test_buckets_refuse_object_access_off_the_network(preview_of, stack):
    """AWS rule: S3-SOURCEVPCE-PERIMETER. Deny unless through the S3 endpoint, an AWS service, or the
    stack's own roles (CI runs outside the VPC); versions are objects too."""
    preview = preview_of(stack, True)
    s3 = _endpoints(preview)["s3"]["id"]
    for purpose in ("data", "artifacts", "capture"):
        (deny,) = _perimeter(preview, purpose)
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert set(deny["Action"]) == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}
        assert deny["Resource"] == f"arn:aws:s3:::mlops-{stack}-{purpose}-{ACCOUNT_ID}/*"
        condition = deny["Condition"]
        assert condition["StringNotEquals"] == {"aws:SourceVpce": s3}
        assert condition["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"}
        exempt = condition["ArnNotLike"]["aws:PrincipalArn"]
        assert f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-{stack}-*" in exempt
    # prod's roles read the models staging promoted (its artifacts), from CI and from prod's VPC.
    staging_artifacts = _perimeter(preview_of("staging", True), "artifacts")[0]
    assert (
        f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-*"
        in staging_artifacts["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    )
    assert not _perimeter(preview_of("dev", True), "data")
    access_logs = next(
        r for r in preview.of_type("aws:s3/bucketPolicy:BucketPolicy") if r["name"] == "storage-access-logs"
    )
    assert "DenyObjectAccessOffTheNetwork" not in access_logs["props"]["policy"]  # S3's log delivery writes there


def test_the_perimeter_decides_as_iam_would(preview_of):
    """AWS rule: S3-SOURCEVPCE-PERIMETER, evaluated: who may read a data object, from where."""
    from kernel.iam_eval import ALLOW, Request, decide

    preview = preview_of("prod", True)
    (deny,) = _perimeter(preview, "data")
    s3 = deny["Condition"]["StringNotEquals"]["aws:SourceVpce"]
    allow_all = {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    policy = {"Statement": [allow_all, deny]}
    obj = f"arn:aws:s3:::mlops-prod-data-{ACCOUNT_ID}/train.csv"

    def ctx(principal, **extra):
        return {
            "aws:PrincipalArn": principal,
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
            **extra,
        }

    stranger = f"arn:aws:iam::{ACCOUNT_ID}:role/analyst"
    ci_role = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-prod-github-deployer"
    assert decide(Request("s3:GetObject", obj, ctx(stranger)), [policy]) != ALLOW
    assert decide(Request("s3:GetObjectVersion", obj, ctx(stranger)), [policy]) != ALLOW
    assert decide(Request("s3:GetObject", obj, ctx(stranger, **{"aws:SourceVpce": s3})), [policy]) == ALLOW
    assert decide(Request("s3:PutObject", obj, ctx(ci_role)), [policy]) == ALLOW
    via_service = {**ctx(stranger), "aws:ViaAWSService": "true"}
    assert decide(Request("s3:GetObject", obj, via_service), [policy]) == ALLOW
    staging_role = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-staging-github-deployer"
    assert decide(Request("s3:GetObject", obj, ctx(staging_role)), [policy]) != ALLOW


def test_the_network_passes_botocore_and_a_bad_value_is_caught(preview_of):
    """AWS rule: BOTOCORE-MODEL. The network's create requests (VPC, subnets, groups, endpoints, flow log)
    are checked against botocore's EC2 model like the rest of the graph."""
    from infra.preflight import check_resources, requests_of

    preview = preview_of("prod", True)
    operations = {r.operation for r in requests_of(preview.resources) if r.service == "ec2"}
    assert operations == {"CreateVpc", "CreateSubnet", "CreateSecurityGroup", "CreateVpcEndpoint", "CreateFlowLogs"}
    assert check_resources(preview.resources) == []
    flow = "aws:ec2/flowLog:FlowLog"
    bad = [
        dict(r, props={**r["props"], "trafficType": "EVERYTHING"}) if r["type"] == flow else r
        for r in preview.resources
    ]
    (finding,) = check_resources(bad)
    assert finding.rule == "BOTOCORE-MODEL" and "TrafficType: 'EVERYTHING' is not valid" in finding.message


@pytest.mark.parametrize("stack", PRIVATE)
def test_the_vpc_policy_rules_find_training_and_models_inside(preview_of, stack):
    """The policies' VPC rules, told the environment has a private network (`StackConfig.private_network`),
    run and find nothing: the models and training defaults carry the network's subnets and group."""
    from dataclasses import replace

    from policies.context import PolicyContext
    from policies.engine import evaluate
    from policies.records import from_preview_graph

    preview = preview_of(stack, True)
    assert preview.config.private_network
    ctx = replace(PolicyContext.from_stack_config(preview.config), has_vpc=preview.config.private_network)
    result = evaluate(from_preview_graph(preview.resources, preview.outputs), ctx)
    assert {"sagemaker-model-vpc", "sagemaker-training-vpc"} <= set(result.rules_run)
    assert [v.message for v in result.violations if "vpc" in v.rule] == []
