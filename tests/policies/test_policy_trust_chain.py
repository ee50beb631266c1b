"""The trust-chain rules on hand-built records: each class a security reviewer looks for, with a safe twin
(so a rule that always fires fails here), and the fail-closed verdict on secrets a state file hides."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from policy_testkit import ACCOUNT, ctx, doc, res, stack_resource

from ci.cli import main
from kernel.aws_model import UNKNOWN
from kernel.wire import SECRET_SIG, SIG_KEY
from policies.audit import audit, target_from_state
from policies.engine import CANNOT_VERIFY, evaluate
from policies.rules import RULES_BY_ID

FOREIGN = "999988887777"
GH = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1111"
OUTPUTS = {"accountId": ACCOUNT, "kmsKeyArn": KEY_ARN, "captureBucket": "mlops-prod-capture"}


def fired(records, rule: str, context=None) -> list[str]:
    result = evaluate(records, context or ctx(github_repository="org/app"), [RULES_BY_ID[rule]])
    return [v.message for v in result.violations]


def role(trust: dict[str, Any], name: str = "r", **props: Any):
    return res(
        "aws:iam/role:Role",
        name,
        {"assumeRolePolicy": doc(trust), "name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", **props},
    )


def oidc(condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": GH},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def role_policy(*statements: dict[str, Any], role_name: str = "deployer"):
    return [
        role({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}, role_name),
        res("aws:iam/rolePolicy:RolePolicy", "p", {"role": role_name, "policy": doc(*statements)}),
    ]


# --- OIDC -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub, ok",
    [
        ("repo:org/app:environment:prod", True),
        ("repo:org/app:pull_request", False),
        ("repo:org/app:*", False),
        ("repo:org/app:environment:*", False),
        ("repo:*", False),
    ],
)
def test_oidc_subject_rejects_wildcards_and_pull_requests(sub, ok):
    condition = {"StringEquals": {AUD: "sts.amazonaws.com"}, "StringLike": {SUB: sub}}
    assert bool(fired([role(oidc(condition))], "iam-oidc-trust-subject")) is not ok


ONE_WORKFLOW = "repo:org/app:environment:dev:job_workflow_ref:org/app/.github/workflows/train.yml@*"
NO_PULL_REQUESTS = {SUB: "repo:org/app:*@refs/pull/*"}


@pytest.mark.parametrize(
    "environment, sub, negated, ok",
    [
        ("dev", ONE_WORKFLOW, NO_PULL_REQUESTS, True),  # any branch of one workflow, never a pull request
        ("dev", ONE_WORKFLOW, {}, False),  # a pull request's merge ref would match
        ("staging", ONE_WORKFLOW, NO_PULL_REQUESTS, False),  # staging and prod pin the default branch
        ("prod", ONE_WORKFLOW, NO_PULL_REQUESTS, False),
        ("dev", ONE_WORKFLOW.replace("train.yml", "*"), NO_PULL_REQUESTS, False),  # any workflow file
    ],
)
def test_dev_may_trust_any_branch_of_one_workflow_but_no_pull_request(environment, sub, negated, ok):
    condition = {"StringEquals": {AUD: "sts.amazonaws.com"}, "StringLike": {SUB: sub}}
    if negated:
        condition["StringNotLike"] = negated
    context = ctx(github_repository="org/app", environment=environment)
    assert bool(fired([role(oidc(condition))], "iam-oidc-trust-subject", context)) is not ok


@pytest.mark.parametrize(
    "condition, ok",
    [
        ({"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:org/app:environment:prod"}}, True),
        ({"StringEquals": {SUB: "repo:org/app:environment:prod"}}, False),
        ({"StringEquals": {SUB: "repo:org/app:environment:prod"}, "StringLike": {AUD: "*"}}, False),
        (
            {
                "StringEquals": {SUB: "repo:org/app:environment:prod"},
                "StringEqualsIfExists": {AUD: "sts.amazonaws.com"},
            },
            False,
        ),
    ],
)
def test_oidc_trust_needs_an_audience(condition, ok):
    """AWS rule: IAM-OIDC-TRUST (an `...IfExists` audience is no audience: IAM-IFEXISTS-ABSENT)."""
    assert bool(fired([role(oidc(condition))], "iam-oidc-trust-audience")) is not ok


# --- service trust ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, condition, ok",
    [
        ("sagemaker.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}, True),
        ("sagemaker.amazonaws.com", {"ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:*:{ACCOUNT}:*"}}, True),
        ("sagemaker.amazonaws.com", None, False),
        ("sagemaker.amazonaws.com", {"StringLike": {"aws:SourceAccount": "*"}}, False),
        ("sagemaker.amazonaws.com", {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}, False),
        ("ec2.amazonaws.com", None, True),  # EC2 sends no source context when it assumes an instance role
    ],
)
def test_service_trust_pins_the_source_account(service, condition, ok):
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    assert bool(fired([role(statement)], "iam-service-trust-source")) is not ok


# --- PassRole and self-modification ---------------------------------------------------------------


PASSED = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize(
    "resource, condition, ok",
    [
        (f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker-execution", PASSED, True),
        ("*", PASSED, False),
        (f"arn:aws:iam::{ACCOUNT}:role/*", PASSED, False),
        (f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker-execution", None, False),
    ],
)
def test_passrole_is_scoped_to_roles_and_a_service(resource, condition, ok):
    statement = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": resource}
    if condition:
        statement["Condition"] = condition
    assert bool(fired(role_policy(statement), "iam-passrole-scoped")) is not ok


def test_passrole_on_star_is_not_also_a_wildcard_write():
    statement = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*", "Condition": PASSED}
    assert fired(role_policy(statement), "iam-no-wildcard-resource-write") == []


@pytest.mark.parametrize(
    "action, resource, ok",
    [
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/other-team-role", True),
        ("iam:GetRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/deployer", True),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/deployer", False),
        ("iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/*", False),
        ("iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/deploy*", False),
        ("iam:DeleteRolePermissionsBoundary", "*", False),
    ],
)
def test_no_role_may_rewrite_itself(action, resource, ok):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    assert bool(fired(role_policy(statement), "iam-no-self-modification")) is not ok


def test_inline_policy_of_the_role_itself_is_judged():
    statement = {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": f"arn:aws:iam::{ACCOUNT}:role/r"}
    trusted = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    inline = [{"name": "self", "policy": doc(statement)}]
    assert fired([role(trusted, inlinePolicies=inline)], "iam-no-self-modification")


# --- public access behind vacuous conditions -------------------------------------------------------


@pytest.mark.parametrize(
    "condition, ok",
    [
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
        ({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, False),
        ({"StringEquals": {"aws:PrincipalAccount": "*"}}, False),
        ({"StringLike": {"aws:PrincipalOrgID": "o-*"}}, False),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, False),
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, False),
        ({"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}}, True),
        ({"StringLike": {"aws:SourceVpce": "vpce-*"}}, False),
        ({"Null": {"aws:SourceAccount": "false"}}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
    ],
)
def test_principal_star_needs_a_condition_that_restricts(condition, ok):
    """AWS rule: IAM-IFEXISTS-ABSENT (and IAM-CONDITION-KEYS: negated operators pass when the key is absent)."""
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    policy = res(
        "aws:s3/bucketPolicy:BucketPolicy", "b", {"bucket": "b", "policy": doc({**statement, "Condition": condition})}
    )
    assert bool(fired([policy], "s3-no-public-grants")) is not ok


# --- foreign accounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_, key",
    [
        ("aws:s3/bucketPolicy:BucketPolicy", "policy"),
        ("aws:kms/key:Key", "policy"),
        ("aws:sns/topicPolicy:TopicPolicy", "policy"),
        ("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy", "resourcePolicy"),
        ("aws:ecr/repositoryPolicy:RepositoryPolicy", "policy"),
    ],
)
@pytest.mark.parametrize("account, ok", [(ACCOUNT, True), (FOREIGN, False)])
def test_resource_policies_grant_only_to_this_account(type_, key, account, ok):
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "x:Read"}
    records = [stack_resource(OUTPUTS), res(type_, "shared", {key: doc(statement)})]
    assert bool(fired(records, "iam-resource-policy-no-foreign-account")) is not ok


def test_foreign_accounts_are_unknown_without_the_stack_account():
    statement = {"Effect": "Allow", "Principal": {"AWS": FOREIGN}, "Action": "s3:GetObject"}
    assert (
        fired(
            [res("aws:s3/bucketPolicy:BucketPolicy", "b", {"policy": doc(statement)})],
            "iam-resource-policy-no-foreign-account",
        )
        == []
    )


# --- keys of the stack ------------------------------------------------------------------------------


def _keyed(sse_key: str, capture_key: str, topic_key: str):
    return [
        stack_resource(OUTPUTS),
        res("aws:kms/key:Key", "key", {"arn": KEY_ARN, "keyId": "1111"}, id="1111"),
        res("aws:kms/alias:Alias", "alias", {"name": "alias/mlops-prod", "targetKeyId": "1111"}),
        res("aws:s3/bucket:Bucket", "data", {"bucket": "mlops-prod-data"}),
        res(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "data",
            {
                "bucket": "mlops-prod-data",
                "rules": [
                    {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": sse_key}}
                ],
            },
        ),
        res(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "config",
            {"kmsKeyArn": KEY_ARN, "dataCaptureConfig": {"enableCapture": True, "kmsKeyId": capture_key}},
        ),
        res("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": topic_key}),
    ]


def test_data_under_the_stacks_own_key_in_any_spelling_passes():
    assert (
        fired(
            _keyed("alias/mlops-prod", "1111", f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-prod"),
            "kms-stack-key-only",
        )
        == []
    )


@pytest.mark.parametrize(
    "keys",
    [
        ("alias/mlops-staging", KEY_ARN, KEY_ARN),
        (KEY_ARN, f"arn:aws:kms:us-east-1:{FOREIGN}:key/1111", KEY_ARN),  # same id, other account
        (KEY_ARN, KEY_ARN, f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-dev"),
    ],
)
def test_data_under_another_environments_or_accounts_key_fails(keys):
    assert len(fired(_keyed(*keys), "kms-stack-key-only")) == 1


# --- public images and captured data -------------------------------------------------------------


def test_public_ecr_repositories_fail_and_a_private_policy_passes():
    private = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "ecr:BatchGetImage"}
    public = {**private, "Principal": "*"}
    policy = "aws:ecr/repositoryPolicy:RepositoryPolicy"
    assert fired([res(policy, "p", {"policy": doc(private)})], "ecr-no-public-repository") == []
    assert fired([res(policy, "p", {"policy": doc(public)})], "ecr-no-public-repository")
    assert fired([res("aws:ecrpublic/repository:Repository", "gallery", {})], "ecr-no-public-repository")


@pytest.mark.parametrize("bucket, ok", [("mlops-prod-capture", True), ("someone-elses-bucket", False)])
def test_capture_stays_in_the_stacks_buckets(bucket, ok):
    config = res(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "config",
        {"dataCaptureConfig": {"enableCapture": True, "destinationS3Uri": f"s3://{bucket}/churn"}},
    )
    records = [
        stack_resource(OUTPUTS),
        res("aws:s3/bucket:Bucket", "capture", {"bucket": "mlops-prod-capture"}),
        config,
    ]
    assert bool(fired(records, "sagemaker-capture-in-stack")) is not ok


# --- prod's private network (a synthetic graph: the shipped prod has no VPC until infra/network.py) ----

PROD = ctx(environment="prod")


def _prod(*network, model_vpc: bool = True, training_vpc: bool = True):
    model = {"enableNetworkIsolation": True}
    if model_vpc:
        model["vpcConfig"] = {"subnets": ["subnet-a"], "securityGroupIds": ["sg-1"]}
    vpc = (
        {"subnetIds": ["subnet-a"], "securityGroupIds": ["sg-1"]}
        if training_vpc
        else {"subnetIds": [], "securityGroupIds": []}
    )
    return [
        stack_resource({**OUTPUTS, "trainingDefaults": {"vpc": vpc}}),
        res("aws:sagemaker/model:Model", "m", model),
        *network,
    ]


VPC = res("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})
PRIVATE = res("aws:ec2/subnet:Subnet", "private", {"vpcId": "vpc-1", "mapPublicIpOnLaunch": False})
PUBLIC = res("aws:ec2/subnet:Subnet", "public", {"vpcId": "vpc-1", "mapPublicIpOnLaunch": True})
IGW = res("aws:ec2/internetGateway:InternetGateway", "igw", {"vpcId": "vpc-1"})


def test_prod_with_a_private_vpc_and_sagemaker_inside_passes():
    assert fired(_prod(VPC, PRIVATE), "network-private-prod", PROD) == []


@pytest.mark.parametrize(
    "records",
    [
        _prod(),
        _prod(VPC),
        _prod(VPC, PUBLIC),
        _prod(VPC, PRIVATE, IGW),
        _prod(VPC, PRIVATE, model_vpc=False),
        _prod(VPC, PRIVATE, training_vpc=False),
    ],
    ids=["no-vpc", "no-subnet", "public-subnet", "internet-gateway", "model-outside", "training-outside"],
)
def test_prod_without_a_private_network_fails(records):
    assert fired(records, "network-private-prod", PROD)


def test_private_network_is_a_prod_rule():
    result = evaluate(_prod(), ctx(environment="dev"), [RULES_BY_ID["network-private-prod"]])
    assert result.violations == [] and "network-private-prod" in result.not_evaluated


# --- fail closed on secrets ------------------------------------------------------------------------


def _ciphertext() -> dict[str, str]:
    return {SIG_KEY: SECRET_SIG, "ciphertext": "v1:c2VjcmV0:AAAA"}


def _plaintext(value: Any) -> dict[str, str]:
    return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(value)}


def _export(tmp_path, environment: str, secret) -> str:
    """A `pulumi stack export` whose role trust, role policy and key policy are secrets."""
    tags = {"environment": environment}
    trust = json.loads(doc(oidc({"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:org/app:environment:prod"}})))
    policy = json.loads(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}))
    key_policy = json.loads(
        doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        )
    )
    stack = "urn:pulumi:prod::mlops::pulumi:pulumi:Stack::mlops-prod"

    def resource(type_: str, name: str, id_: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            "urn": f"urn:pulumi:prod::mlops::{type_}::{name}",
            "custom": True,
            "id": id_,
            "type": type_,
            "inputs": inputs,
            "outputs": {**inputs, "tags": tags},
            "parent": stack,
        }

    role_arn = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    document = {
        "version": 3,
        "deployment": {
            "manifest": {"version": "v3.200.0"},
            "resources": [
                {"urn": stack, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {"accountId": ACCOUNT}},
                resource(
                    "aws:iam/role:Role",
                    "deployer",
                    "deployer",
                    {"name": "deployer", "arn": role_arn, "assumeRolePolicy": secret(trust), "tags": tags},
                ),
                resource(
                    "aws:iam/rolePolicy:RolePolicy",
                    "deployer-policy",
                    "deployer:p",
                    {"role": "deployer", "policy": secret(policy)},
                ),
                resource(
                    "aws:kms/key:Key",
                    "key",
                    "1111",
                    {"arn": KEY_ARN, "enableKeyRotation": True, "policy": secret(key_policy), "tags": tags},
                ),
            ],
        },
    }
    path = tmp_path / f"{environment}.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_rules_that_read_a_secret_policy_say_they_cannot_verify_it(tmp_path):
    result = audit(target_from_state(_export(tmp_path, "prod", lambda _: _ciphertext())))
    unverified = {(v.rule, v.name) for v in result.cannot_verify}
    assert {
        ("iam-trust-no-wildcard-principal", "deployer"),
        ("iam-oidc-trust-subject", "deployer"),
        ("iam-oidc-trust-audience", "deployer"),
        ("iam-no-wildcard-action", "deployer-policy"),
        ("iam-passrole-scoped", "deployer-policy"),
        ("iam-no-self-modification", "deployer-policy"),
        ("kms-key-policy-no-public", "key"),
        ("iam-resource-policy-no-foreign-account", "key"),
    } <= unverified
    assert all(v.severity == CANNOT_VERIFY and v.enforcement == "mandatory" for v in result.cannot_verify)
    assert result.exit_code == 1 and result.summary()["cannotVerify"] == len(result.cannot_verify)


def test_cannot_verify_is_advisory_in_dev(tmp_path):
    result = audit(target_from_state(_export(tmp_path, "dev", lambda _: _ciphertext())))
    assert result.cannot_verify and all(v.enforcement == "advisory" for v in result.cannot_verify)


def test_readable_secrets_are_judged_not_flagged(tmp_path):
    result = audit(target_from_state(_export(tmp_path, "prod", _plaintext)))
    assert result.cannot_verify == []
    assert [v.rule for v in result.violations if v.rule.startswith(("iam-", "kms-"))] == []


def test_mlops_audit_state_fails_closed_on_secrets(tmp_path, capsys):
    code = main(["audit", "--state", _export(tmp_path, "prod", lambda _: _ciphertext())])
    out, _ = capsys.readouterr()
    assert code == 1 and "[mandatory/cannot-verify] iam-oidc-trust-subject" in out and "result: FAIL" in out


POLICY_DOCUMENT_READERS = (
    "iam-no-wildcard-action",
    "iam-no-wildcard-resource-write",
    "iam-trust-no-wildcard-principal",
    "iam-oidc-trust-subject",
    "iam-oidc-trust-audience",
    "iam-service-trust-source",
    "iam-passrole-scoped",
    "iam-no-self-modification",
    "iam-resource-policy-no-foreign-account",
    "kms-key-policy-no-public",
    "s3-no-public-grants",
    "s3-tls-only",
    "sns-topic-policy-no-public",
    "sagemaker-package-group-policy-no-public",
    "ecr-no-public-repository",
)


@pytest.mark.parametrize("rule", POLICY_DOCUMENT_READERS)
def test_every_rule_that_reads_a_policy_document_fails_closed(rule):
    documents = {"policy", "assumeRolePolicy", "resourcePolicy", "inlinePolicies"}
    assert {k for _, k in RULES_BY_ID[rule].blind_spots} & documents


def test_unknown_names_during_a_preview_are_never_called_foreign():
    """CrossGuard during `pulumi preview`: a new key's ARN and a new bucket's name are not known yet."""
    key = replace(res("aws:kms/key:Key", "key", {"arn": UNKNOWN}), id="")  # CrossGuard records carry no id
    alias = res("aws:kms/alias:Alias", "alias", {"name": "alias/mlops-prod"})
    topic = res("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": KEY_ARN})
    assert fired([key, alias, topic], "kms-stack-key-only") == []
    bucket = replace(res("aws:s3/bucket:Bucket", "capture", {"bucket": UNKNOWN}), id="")
    config = res(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "config",
        {"dataCaptureConfig": {"enableCapture": True, "destinationS3Uri": "s3://mlops-prod-capture/churn"}},
    )
    assert fired([bucket, config], "sagemaker-capture-in-stack") == []


@pytest.mark.parametrize(
    "rule, type_, key",
    [
        ("s3-public-access-block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "blockPublicPolicy"),
        ("sagemaker-model-network-isolation", "aws:sagemaker/model:Model", "enableNetworkIsolation"),
        ("kms-stack-key-only", "aws:sns/topic:Topic", "kmsMasterKeyId"),
        ("iam-no-full-access-policy", "aws:iam/role:Role", "managedPolicyArns"),
    ],
)
def test_a_secret_setting_is_not_a_pass(rule, type_, key):
    record = replace(res(type_, "x", {key: UNKNOWN}), secret_keys=frozenset({key}))
    prod = evaluate([record], ctx(environment="prod"), [RULES_BY_ID[rule]])
    dev = evaluate([record], ctx(environment="dev"), [RULES_BY_ID[rule]])
    assert [(v.verdict, v.enforcement) for v in prod.violations] == [(CANNOT_VERIFY, "mandatory")]
    assert [(v.verdict, v.enforcement) for v in dev.violations] == [(CANNOT_VERIFY, "advisory")]
