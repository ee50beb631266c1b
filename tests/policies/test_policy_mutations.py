"""The mutation suite: insecure variants of the real stacks, each caught by its rule and no other.

Each variant starts from a stack's offline preview with its model deployed (shipped stacks have
no approved package, hence no endpoint), breaks one thing — by editing the preview's records
the way a careless change to infra/ would, or through the stack config where that is the
natural change — and must produce new violations of exactly the intended rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from policy_testkit import (
    ACCOUNT,
    audit,
    deployed,
    doc,
    drop,
    edit,
    edit_outputs,
    edit_policy,
    find,
    findings,
    res,
    shipped_with,
    stack_records,
)

from policies.records import Resource

Mutate = Callable[[list[Resource]], list[Resource]]
VPC = {"subnetIds": ["subnet-0a1b2c3d4e5f60718"], "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}
# Resources of the deployed stacks that variants edit: (type suffix, name).
ENDPOINT_CONFIG = ("EndpointConfiguration", "serving-churn-config")
MODEL = ("sagemaker/model:Model", "serving-churn-model")
REPOSITORY = ("ecr/repository:Repository", "registry-images")
TOPIC = ("sns/topic:Topic", "monitoring-alerts")
LOG_GROUP = ("LogGroup", "training-pipeline-logs")
KEY = ("kms/key:Key", "storage-key")
TRAINING_FAILED_ALARM = ("MetricAlarm", "monitoring-training-failed")
TRAINING_PERMISSIONS = ("RolePolicy", "training-execution-permissions")
BRING_VPC = {"mlops:vpc": VPC, "mlops:network": {"enabled": False}}  # instead of the stack's own network


@dataclass(frozen=True)
class Variant:
    id: str
    rule: str
    mutate: Mutate | None = None
    stack: str = "prod"
    base_overrides: dict[str, Any] | None = None  # config of the base (model deployed unless given)
    config_change: dict[str, Any] | None = None  # a config-level mutation on top of the base
    base_mutate: Mutate | None = None  # records the base gains first (a network the shipped stacks lack yet)


def _for_rule(rule: str, mutations: dict[str, Mutate]) -> list[Variant]:
    """Variants of a prod stack that break the same rule: variant id -> mutation."""
    return [Variant(id, rule, mutate) for id, mutate in mutations.items()]


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props[key] = value

    return change


def _pop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.pop(key, None)

    return change


def _edit(target: tuple[str, str], change: Callable[[dict[str, Any]], None]) -> Mutate:
    """A mutation of one resource of the stack, named by (type suffix, name): one of the targets below."""
    return lambda records: edit(records, *target, change)


def _drop(type_suffix: str, name: str) -> Mutate:
    return lambda records: drop(records, type_suffix, name)


def _in_policy(key: str, change: Callable[[list[dict[str, Any]]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda props: edit_policy(props, key, change)


def _append(statement: dict[str, Any]) -> Callable[[list[dict[str, Any]]], None]:
    return lambda statements: statements.append(statement)


def _outputs(change: Callable[[dict[str, Any]], None]) -> Mutate:
    def mutate(records):
        return edit_outputs(records, lambda props: change(props["trainingDefaults"]))

    return mutate


def _pab_flag_off(records):
    return edit(records, "BucketPublicAccessBlock", "storage-data", _set("blockPublicPolicy", False))


def _public_read_statement(records):
    bucket_arn = find(records, "s3/bucket:Bucket", "storage-data").props["arn"]
    read = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{bucket_arn}/*",
    }
    return edit(records, "BucketPolicy", "storage-data", _in_policy("policy", _append(read)))


def _sse_s3(records):
    def change(props):
        props["rules"] = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]

    return edit(records, "BucketServerSideEncryptionConfiguration", "storage-artifacts", change)


def _ownership_writer(records):
    return edit(records, "BucketOwnershipControls", "storage-data", _set("rule", {"objectOwnership": "ObjectWriter"}))


def _key_policy_public(records):
    def change(statements):
        statements[0]["Principal"] = "*"

    return edit(records, "kms/key:Key", "storage-key", _in_policy("policy", change))


def _artifacts_arn(records) -> str:
    return find(records, "s3/bucket:Bucket", "storage-artifacts").props["arn"]


def _wildcard_action(records):
    everything = {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": f"{_artifacts_arn(records)}/*"}
    return edit(records, *TRAINING_PERMISSIONS, _in_policy("policy", _append(everything)))


def _wildcard_resource(records):
    write = {"Sid": "WriteAnywhere", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "*"}
    return edit(records, *TRAINING_PERMISSIONS, _in_policy("policy", _append(write)))


def _full_access_attachment(records):
    role = find(records, "iam/role:Role", "training-execution-role")
    attachment = res(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "training-sagemaker-full-access",
        {"role": role.id, "policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"},
        stack="prod",
        deps=(role.urn,),
    )
    return records + [attachment]


def _trust_anyone(records):
    def change(statements):
        statements[0]["Principal"] = {"AWS": "*"}
        statements[0].pop("Condition", None)

    return edit(records, "iam/role:Role", "training-execution-role", _in_policy("assumeRolePolicy", change))


def _oidc_any_repository(records):
    def change(statements):
        statements[0]["Condition"]["StringEquals"].pop("token.actions.githubusercontent.com:sub")
        statements[0]["Condition"]["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:example-org/*"}

    return edit(records, "iam/role:Role", "identity-deployer", _in_policy("assumeRolePolicy", change))


def _inline_and_role_policy(records):
    data_arn = find(records, "s3/bucket:Bucket", "storage-data").props["arn"]
    inline = [
        {
            "name": "read-data",
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{data_arn}/*"}],
                }
            ),
        }
    ]
    return edit(records, "iam/role:Role", "training-execution-role", _set("inlinePolicies", inline))


def _training_without_instance_condition(records):
    start = {
        "Sid": "StartTraining",
        "Effect": "Allow",
        "Action": "sagemaker:CreateTrainingJob",
        "Resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/mlops-prod-*",
    }
    return edit(records, *TRAINING_PERMISSIONS, _in_policy("policy", _append(start)))


def _no_capture(records):
    return edit(records, "EndpointConfiguration", "serving-churn-config", _pop("dataCaptureConfig"))


def _alarm_dims(name: str, dims: dict[str, str]) -> Mutate:
    return lambda records: edit(records, "MetricAlarm", name, _set("dimensions", dims))


def _no_rollback(records):
    def change(props):
        props["deploymentConfig"].pop("autoRollbackConfiguration")

    return edit(records, "sagemaker/endpoint:Endpoint", "serving-churn-endpoint", change)


def _public_package_group(records):
    def change(statements):
        statements[0]["Principal"] = "*"
        statements[0].pop("Condition", None)

    return edit(
        records, "ModelPackageGroupPolicy", "registry-churn-read-downstream", _in_policy("resourcePolicy", change)
    )


def _public_topic(records):
    def change(statements):
        statements[0]["Principal"] = "*"
        statements[0].pop("Condition", None)

    return edit(records, "TopicPolicy", "monitoring-alerts-publishers", _in_policy("policy", change))


def _dev_gpu_endpoint(records):
    key_arn = find(records, "kms/key:Key", "storage-key").props["arn"]

    def change(props):
        variant = props["productionVariants"][0]
        variant.pop("serverlessConfig")
        variant.update(instanceType="ml.g5.xlarge", initialInstanceCount=1.0, initialVariantWeight=1.0)
        props["kmsKeyArn"] = key_arn

    records = edit(records, "EndpointConfiguration", "serving-churn-config", change)
    # An instance-served model is isolated (only serverless ones may not be: SERVERLESS-EXCLUSIONS).
    return edit(records, "sagemaker/model:Model", "serving-churn-model", _set("enableNetworkIsolation", True))


def _drop_tag(type_suffix: str, name: str, tag: str) -> Mutate:
    """The resource lacks `tag` however AWS would see it: not among its own tags, nor in what
    AWS reports (`tagsAll`), and created through a second AWS provider whose default tags lack it
    (the stack's provider tags everything it creates, so no resource of it can lack one)."""

    def without(tags: Any) -> Any:
        return {k: v for k, v in tags.items() if k != tag} if isinstance(tags, dict) else tags

    def mutate(records: list[Resource]) -> list[Resource]:
        target = find(records, type_suffix, name)
        provider = next(r for r in records if r.urn in (target.provider, target.provider.rsplit("::", 1)[0]))
        defaults = json.loads(provider.props["defaultTags"])
        defaults["tags"] = without(defaults["tags"])
        untagged = replace(
            provider,
            urn=provider.urn.rsplit("::", 1)[0] + "::untagged",
            name="untagged",
            props={**provider.props, "defaultTags": json.dumps(defaults)},
        )
        props = {**target.props, **{k: without(target.props[k]) for k in ("tags", "tagsAll") if k in target.props}}
        edited = [replace(r, props=props, provider=untagged.urn) if r is target else r for r in records]
        return [*edited, untagged]

    return mutate


# --- the trust chain: who may assume, pass, rewrite, read and decrypt ---------------------------

FOREIGN = "999988887777"
GH = "token.actions.githubusercontent.com"
REPO_SUB = "repo:example-org/mlops-blueprint"
DEPLOYER_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-github-deployer"
EXECUTION_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker-execution"


def _trust(role: str, change: Callable[[dict[str, Any]], None]) -> Mutate:
    """Change the first statement of a role's trust policy."""
    return lambda records: edit(
        records, "iam/role:Role", role, _in_policy("assumeRolePolicy", lambda statements: change(statements[0]))
    )


def _oidc_sub(operator: str, value: Any) -> Mutate:
    def change(statement):
        statement["Condition"]["StringEquals"].pop(f"{GH}:sub")
        statement["Condition"].setdefault(operator, {})[f"{GH}:sub"] = value

    return _trust("identity-deployer", change)


def _oidc_aud(operator: str | None, value: Any = None) -> Mutate:
    def change(statement):
        statement["Condition"]["StringEquals"].pop(f"{GH}:aud")
        if operator is not None:
            statement["Condition"].setdefault(operator, {})[f"{GH}:aud"] = value

    return _trust("identity-deployer", change)


def _sagemaker_trust_condition(condition: dict[str, Any] | None) -> Mutate:
    def change(statement):
        statement.pop("Condition", None)
        if condition is not None:
            statement["Condition"] = condition

    return _trust("training-execution-role", change)


def _deployer_statement(sid: str, change: Callable[[dict[str, Any]], None]) -> Mutate:
    def in_statements(statements):
        change(next(s for s in statements if s.get("Sid") == sid))

    return lambda records: edit(
        records, "RolePolicy", "identity-deployer-pipeline", _in_policy("policy", in_statements)
    )


def _grant(policy: str, action: Any, resource: Any) -> Mutate:
    statement = {"Sid": "Escalate", "Effect": "Allow", "Action": action, "Resource": resource}
    return lambda records: edit(records, "RolePolicy", policy, _in_policy("policy", _append(statement)))


def _resource_statement(type_suffix: str, name: str, key: str, statement: Callable[[list[Resource]], dict]) -> Mutate:
    return lambda records: edit(records, type_suffix, name, _in_policy(key, _append(statement(records))))


def _data_bucket_grant(principal: Any, condition: dict[str, Any] | None = None) -> Mutate:
    def statement(records):
        out = {
            "Sid": "Shared",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetObject",
            "Resource": f"{find(records, 's3/bucket:Bucket', 'storage-data').props['arn']}/*",
        }
        return {**out, "Condition": condition} if condition else out

    return _resource_statement("BucketPolicy", "storage-data", "policy", statement)


def _key_grant(principal: Any, condition: dict[str, Any] | None = None) -> Mutate:
    statement = {"Sid": "Shared", "Effect": "Allow", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return _resource_statement("kms/key:Key", "storage-key", "policy", lambda records: statement)


def _topic_grant(principal: Any, action: str, condition: dict[str, Any] | None = None) -> Mutate:
    def statement(records):
        out = {
            "Sid": "Shared",
            "Effect": "Allow",
            "Principal": principal,
            "Action": action,
            "Resource": find(records, "sns/topic:Topic", "monitoring-alerts").props["arn"],
        }
        return {**out, "Condition": condition} if condition else out

    return _resource_statement("TopicPolicy", "monitoring-alerts-publishers", "policy", statement)


def _package_group_reader(principal: Any, condition: dict[str, Any] | None) -> Mutate:
    def change(statements):
        statements[0]["Principal"] = principal
        if condition is not None:
            statements[0]["Condition"] = condition

    return lambda records: edit(
        records, "ModelPackageGroupPolicy", "registry-churn-read-downstream", _in_policy("resourcePolicy", change)
    )


def _add(type_: str, name: str, props: dict[str, Any]) -> Mutate:
    return lambda records: records + [res(type_, name, props, stack="prod")]


def _repository_policy(principal: Any, condition: dict[str, Any] | None = None) -> Mutate:
    statement = {"Sid": "Pull", "Effect": "Allow", "Principal": principal, "Action": ["ecr:BatchGetImage"]}
    if condition:
        statement["Condition"] = condition
    return _add(
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "registry-images-policy",
        {"repository": "mlops-prod", "policy": doc(statement)},
    )


def _bucket_key(bucket: str, key: str) -> Mutate:
    def change(props):
        props["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = key

    return lambda records: edit(records, "BucketServerSideEncryptionConfiguration", bucket, change)


def _capture(key: str, value: str) -> Mutate:
    return lambda records: edit(
        records,
        "EndpointConfiguration",
        "serving-churn-config",
        lambda props: props["dataCaptureConfig"].update({key: value}),
    )


FOREIGN_KEY = f"arn:aws:kms:us-east-1:{FOREIGN}:key/0b8c4d2e-1111-4222-8333-944455556666"
STAGING_ALIAS = f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-staging"


def _network(records):
    """The private network infra/network.py will declare: a VPC, two private subnets, an S3 endpoint."""
    vpc = {"cidrBlock": "10.20.0.0/16", "enableDnsHostnames": True, "id": "vpc-0a1b2c3d4e5f60718"}
    return records + [
        res("aws:ec2/vpc:Vpc", "network-vpc", vpc, stack="prod"),
        res(
            "aws:ec2/subnet:Subnet",
            "network-private-a",
            {"vpcId": vpc["id"], "cidrBlock": "10.20.0.0/20"},
            stack="prod",
        ),
        res(
            "aws:ec2/subnet:Subnet",
            "network-private-b",
            {"vpcId": vpc["id"], "cidrBlock": "10.20.16.0/20"},
            stack="prod",
        ),
        res(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "network-s3",
            {"vpcId": vpc["id"], "serviceName": "com.amazonaws.us-east-1.s3", "vpcEndpointType": "Gateway"},
            stack="prod",
        ),
    ]


def _network_variant(id: str, mutate: Mutate) -> Variant:
    return Variant(
        id, "network-private-prod", mutate, base_overrides=deployed("prod", **BRING_VPC), base_mutate=_network
    )


def _public_subnets(*names: str) -> Mutate:
    def mutate(records):
        for name in names:
            records = edit(records, "ec2/subnet:Subnet", name, _set("mapPublicIpOnLaunch", True))
        return records

    return mutate


TRUST_CHAIN_VARIANTS = [
    # OIDC subject: wildcards and pull requests
    *_for_rule(
        "iam-oidc-trust-subject",
        {
            "oidc-pull-request-subject": _oidc_sub("StringEquals", f"{REPO_SUB}:pull_request"),
            "oidc-any-ref-of-the-repository": _oidc_sub("StringLike", f"{REPO_SUB}:*"),
            "oidc-any-repository-at-all": _oidc_sub("StringLike", "repo:*"),
            "oidc-any-environment": _oidc_sub("StringLike", f"{REPO_SUB}:environment:*"),
            "oidc-subjects-include-pull-requests": _oidc_sub(
                "StringEquals", [f"{REPO_SUB}:environment:prod", f"{REPO_SUB}:pull_request"]
            ),
        },
    ),
    # OIDC audience
    *_for_rule(
        "iam-oidc-trust-audience",
        {
            "oidc-no-audience": _oidc_aud(None),
            "oidc-any-audience": _oidc_aud("StringLike", "*"),
            "oidc-audience-if-exists": _oidc_aud("StringEqualsIfExists", "sts.amazonaws.com"),
        },
    ),
    # Service trust: the confused deputy
    *_for_rule(
        "iam-service-trust-source",
        {
            "sagemaker-trust-any-account": _sagemaker_trust_condition(None),
            "sagemaker-trust-account-wildcard": _sagemaker_trust_condition({"StringLike": {"aws:SourceAccount": "*"}}),
            "sagemaker-trust-source-if-exists": _sagemaker_trust_condition(
                {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}
            ),
            "sagemaker-trust-jobs-of-any-account": _sagemaker_trust_condition(
                {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:*:*:training-job/*"}}
            ),
        },
    ),
    # PassRole
    *_for_rule(
        "iam-passrole-scoped",
        {
            "passrole-on-any-resource": _deployer_statement("PassOnlyTheExecutionRole", _set("Resource", "*")),
            "passrole-on-every-role": _deployer_statement(
                "PassOnlyTheExecutionRole", _set("Resource", f"arn:aws:iam::{ACCOUNT}:role/*")
            ),
            "passrole-to-any-service": _deployer_statement("PassOnlyTheExecutionRole", _pop("Condition")),
            "passrole-to-a-wildcard-service": _deployer_statement(
                "PassOnlyTheExecutionRole", _set("Condition", {"StringLike": {"iam:PassedToService": "*"}})
            ),
            "passrole-through-an-action-glob": _grant(
                "identity-deployer-pipeline", "iam:Pass*", f"arn:aws:iam::{ACCOUNT}:role/*"
            ),
        },
    ),
    # Roles that rewrite themselves
    *_for_rule(
        "iam-no-self-modification",
        {
            "deployer-rewrites-own-policy": _grant("identity-deployer-pipeline", "iam:PutRolePolicy", DEPLOYER_ARN),
            "deployer-attaches-to-every-role": _grant(
                "identity-deployer-pipeline", "iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/*"
            ),
            "deployer-rewrites-own-trust": _grant(
                "identity-deployer-pipeline", "iam:UpdateAssumeRolePolicy", DEPLOYER_ARN
            ),
            "deployer-drops-own-boundary": _grant(
                "identity-deployer-pipeline",
                "iam:DeleteRolePermissionsBoundary",
                f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-*",
            ),
            "execution-role-edits-itself": _grant("training-execution-permissions", "iam:PutRole*", EXECUTION_ARN),
        },
    ),
    # Public access behind conditions that restrict nothing
    *_for_rule(
        "s3-no-public-grants",
        {
            "bucket-public-from-any-address": _data_bucket_grant("*", {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            "bucket-public-to-any-principal-account": _data_bucket_grant(
                "*", {"StringLike": {"aws:PrincipalAccount": "*"}}
            ),
            "bucket-public-forallvalues-source-account": _data_bucket_grant(
                "*", {"ForAllValues:StringEquals": {"aws:SourceAccount": ACCOUNT}}
            ),
            "bucket-public-except-one-endpoint": _data_bucket_grant(
                "*", {"StringNotEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}}
            ),
        },
    ),
    *_for_rule(
        "kms-key-policy-no-public",
        {
            "key-public-to-any-caller-account": _key_grant("*", {"StringLike": {"kms:CallerAccount": "*"}}),
            "key-public-to-roles-of-any-account": _key_grant(
                "*", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}
            ),
        },
    ),
    Variant(
        "topic-public-if-source-exists",
        "sns-topic-policy-no-public",
        _topic_grant("*", "sns:Publish", {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}),
    ),
    Variant(
        "package-group-public-to-any-organisation",
        "sagemaker-package-group-policy-no-public",
        _package_group_reader("*", {"StringLike": {"aws:PrincipalOrgID": "o-*"}}),
        stack="dev",
    ),
    # Grants to foreign accounts
    *_for_rule(
        "iam-resource-policy-no-foreign-account",
        {
            "bucket-shared-with-foreign-root": _data_bucket_grant({"AWS": f"arn:aws:iam::{FOREIGN}:root"}),
            "bucket-shared-with-foreign-account-id": _data_bucket_grant({"AWS": FOREIGN}),
            "bucket-shared-with-anyone-of-foreign-account": _data_bucket_grant(
                "*", {"StringEquals": {"aws:PrincipalAccount": FOREIGN}}
            ),
            "key-shared-with-foreign-role": _key_grant({"AWS": f"arn:aws:iam::{FOREIGN}:role/analytics"}),
            "topic-subscribable-by-foreign-account": _topic_grant(
                {"AWS": f"arn:aws:iam::{FOREIGN}:root"}, "sns:Subscribe"
            ),
        },
    ),
    Variant(
        "package-group-shared-with-foreign-account",
        "iam-resource-policy-no-foreign-account",
        _package_group_reader({"AWS": f"arn:aws:iam::{FOREIGN}:root"}, None),
        stack="dev",
    ),
    Variant(
        "repository-shared-with-foreign-account",
        "iam-resource-policy-no-foreign-account",
        _repository_policy({"AWS": f"arn:aws:iam::{FOREIGN}:root"}),
    ),
    # Data under a key that is not the stack's
    *_for_rule(
        "kms-stack-key-only",
        {
            "data-under-staging-key": _bucket_key("storage-data", STAGING_ALIAS),
            "artifacts-under-foreign-key": _bucket_key("storage-artifacts", FOREIGN_KEY),
            "endpoint-volumes-under-dev-key": _edit(ENDPOINT_CONFIG, _set("kmsKeyArn", "alias/mlops-dev")),
            "capture-under-foreign-key": _capture("kmsKeyId", FOREIGN_KEY),
            "topic-under-staging-key": _edit(TOPIC, _set("kmsMasterKeyId", "alias/mlops-staging")),
            "logs-under-foreign-key": _edit(LOG_GROUP, _set("kmsKeyId", FOREIGN_KEY)),
            "images-under-dev-key": _edit(
                REPOSITORY,
                _set(
                    "encryptionConfigurations",
                    [{"encryptionType": "KMS", "kmsKey": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-dev"}],
                ),
            ),
            "training-volumes-under-foreign-key": _outputs(lambda td: td.update(volumeKmsKeyArn=FOREIGN_KEY)),
        },
    ),
    # Public images
    *_for_rule(
        "ecr-no-public-repository",
        {
            "public-gallery-repository": _add(
                "aws:ecrpublic/repository:Repository", "registry-public-images", {"repositoryName": "mlops-prod"}
            ),
            "repository-policy-public-pull": _repository_policy("*"),
            "repository-policy-public-to-any-org": _repository_policy("*", {"StringLike": {"aws:PrincipalOrgID": "*"}}),
        },
    ),
    # Captured requests leave the stack
    *_for_rule(
        "sagemaker-capture-in-stack",
        {
            "capture-to-another-teams-bucket": _capture("destinationS3Uri", "s3://analytics-team-landing/churn"),
            "capture-to-dev-bucket": _capture("destinationS3Uri", f"s3://mlops-dev-capture-{ACCOUNT}/churn"),
        },
    ),
    # Prod's private network (the base gains the network infra/network.py will declare)
    _network_variant("prod-without-vpc", lambda r: drop(r, "ec2/vpc:Vpc", "network-vpc")),
    _network_variant(
        "prod-vpc-with-internet-gateway",
        _add("aws:ec2/internetGateway:InternetGateway", "network-igw", {"vpcId": "vpc-0a1b2c3d4e5f60718"}),
    ),
    _network_variant(
        "prod-vpc-with-public-nat",
        _add("aws:ec2/natGateway:NatGateway", "network-nat", {"connectivityType": "public", "subnetId": "subnet-0a"}),
    ),
    _network_variant(
        "prod-route-to-the-internet",
        _add(
            "aws:ec2/route:Route",
            "network-default-route",
            {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-0a1b2c3d"},
        ),
    ),
    _network_variant("prod-subnet-public", _public_subnets("network-private-a")),
    _network_variant("prod-no-private-subnet", _public_subnets("network-private-a", "network-private-b")),
]


VARIANTS = [
    # S3
    Variant("public-access-block-flag-off", "s3-public-access-block", _pab_flag_off),
    Variant("bucket-policy-public-read", "s3-no-public-grants", _public_read_statement),
    Variant("artifacts-sse-s3-not-kms", "s3-bucket-kms-encryption", _sse_s3),
    Variant("capture-unversioned", "s3-bucket-versioning", _drop("BucketVersioning", "storage-capture")),
    Variant("data-bucket-without-tls-policy", "s3-tls-only", _drop("BucketPolicy", "storage-data")),
    Variant("data-bucket-not-logged", "s3-access-logging", _drop("BucketLogging", "storage-data")),
    Variant("capture-kept-forever", "s3-lifecycle", _drop("BucketLifecycleConfiguration", "storage-capture")),
    Variant("acls-enabled", "s3-object-ownership-enforced", _ownership_writer),
    # KMS
    Variant("key-rotation-off", "kms-key-rotation", _edit(KEY, _set("enableKeyRotation", False))),
    Variant("key-policy-to-anyone", "kms-key-policy-no-public", _key_policy_public),
    # IAM
    Variant("wildcard-action", "iam-no-wildcard-action", _wildcard_action),
    Variant("write-on-any-resource", "iam-no-wildcard-resource-write", _wildcard_resource),
    Variant("sagemaker-full-access", "iam-no-full-access-policy", _full_access_attachment),
    Variant("trust-any-principal", "iam-trust-no-wildcard-principal", _trust_anyone),
    Variant("oidc-any-repository-of-org", "iam-oidc-trust-subject", _oidc_any_repository),
    Variant("inline-and-separate-policies", "iam-role-policy-management-conflict", _inline_and_role_policy),
    Variant("training-any-instance-type", "iam-training-instance-type-condition", _training_without_instance_condition),
    # SageMaker
    Variant("unencrypted-endpoint", "sagemaker-endpoint-config-kms", _edit(ENDPOINT_CONFIG, _pop("kmsKeyArn"))),
    Variant("prod-endpoint-without-capture", "sagemaker-endpoint-data-capture", _no_capture),
    Variant(
        "staging-capture-off",
        "sagemaker-endpoint-data-capture",
        stack="staging",
        config_change=shipped_with("staging", "mlops:serving", dataCaptureSamplingPercent=0),
    ),
    Variant(
        "model-with-network", "sagemaker-model-network-isolation", _edit(MODEL, _set("enableNetworkIsolation", False))
    ),
    Variant(
        "model-outside-vpc",
        "sagemaker-model-vpc",
        _edit(MODEL, _pop("vpcConfig")),
        base_overrides=deployed("prod", **BRING_VPC),
    ),
    Variant(
        "training-outside-vpc",
        "sagemaker-training-vpc",
        _outputs(lambda td: td.update(vpc={"subnetIds": [], "securityGroupIds": []})),
        base_overrides=deployed("prod", **BRING_VPC),
    ),
    Variant(
        "5xx-alarm-missing-variant-dimension",
        "sagemaker-endpoint-5xx-alarm",
        _alarm_dims("monitoring-churn-5xx", {"EndpointName": "mlops-prod-churn"}),
    ),
    Variant(
        "latency-alarm-on-another-endpoint",
        "sagemaker-endpoint-latency-alarm",
        _alarm_dims("monitoring-churn-latency", {"EndpointName": "mlops-prod-other", "VariantName": "primary"}),
    ),
    Variant("prod-rollout-without-rollback", "sagemaker-endpoint-rollout-rollback", _no_rollback),
    Variant("no-package-group", "sagemaker-model-package-group-exists", _drop("ModelPackageGroup", "registry-churn")),
    Variant(
        "package-group-shared-with-anyone",
        "sagemaker-package-group-policy-no-public",
        _public_package_group,
        stack="dev",
    ),
    Variant(
        "gpu-outside-allowlist",
        "sagemaker-training-instance-allowlist",
        _outputs(lambda td: td.update(defaultInstanceType="ml.p5.48xlarge")),
        stack="dev",
    ),
    Variant(
        "dev-on-demand-training",
        "sagemaker-training-spot-checkpoints",
        stack="dev",
        config_change=shipped_with("dev", "mlops:training", spot=False, maxWaitSeconds=7200),
    ),
    Variant("unbounded-training", "sagemaker-training-max-runtime", _outputs(lambda td: td.pop("maxRuntimeSeconds"))),
    Variant(
        "training-volume-unencrypted", "sagemaker-training-volume-kms", _outputs(lambda td: td.pop("volumeKmsKeyArn"))
    ),
    # ECR
    Variant(
        "no-scan-on-push",
        "ecr-scan-on-push",
        _edit(REPOSITORY, _set("imageScanningConfiguration", {"scanOnPush": False})),
    ),
    Variant("mutable-tags", "ecr-immutable-tags", _edit(REPOSITORY, _set("imageTagMutability", "MUTABLE"))),
    Variant(
        "images-aes256",
        "ecr-kms-encryption",
        _edit(REPOSITORY, _set("encryptionConfigurations", [{"encryptionType": "AES256"}])),
    ),
    # SNS / CloudWatch
    Variant("topic-unencrypted", "sns-topic-encrypted", _edit(TOPIC, _pop("kmsMasterKeyId"))),
    Variant("topic-open-to-anyone", "sns-topic-policy-no-public", _public_topic),
    Variant("silent-alarm", "cloudwatch-alarm-has-action", _edit(TRAINING_FAILED_ALARM, _set("alarmActions", []))),
    Variant("logs-forever", "cloudwatch-log-group-retention", _edit(LOG_GROUP, _pop("retentionInDays"))),
    Variant("logs-unencrypted", "cloudwatch-log-group-kms", _edit(LOG_GROUP, _pop("kmsKeyId"))),
    # Cost
    Variant("no-budget", "cost-budget-exists", _drop("budgets/budget:Budget", "monitoring-budget")),
    Variant(
        "gpu-endpoint-over-budget",
        "cost-within-budget",
        config_change=shipped_with("prod", "mlops:serving", instanceType="ml.p3.2xlarge"),
    ),
    # The budget is raised so that the estimate stays within it: this variant is about the idle GPU itself.
    Variant(
        "dev-endpoint-bills-by-the-hour",
        "cost-no-always-on-gpu-in-dev",
        _dev_gpu_endpoint,
        stack="dev",
        base_overrides=deployed("dev", **shipped_with("dev", "mlops:monitoring", monthlyBudgetUsd=3000)),
    ),
    # Tags
    Variant("key-without-owner", "tags-required", _drop_tag("kms/key:Key", "storage-key", "owner")),
    *TRUST_CHAIN_VARIANTS,
]


def test_the_suite_is_big_enough_and_covers_most_rules():
    from policies.rules import RULES

    assert len(VARIANTS) >= 80
    assert len({v.id for v in VARIANTS}) == len(VARIANTS)
    covered = {v.rule for v in VARIANTS}
    assert covered <= {r.id for r in RULES}
    assert len(covered) >= 50


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_variant_is_caught_by_its_rule_and_no_other(variant: Variant):
    base_overrides = variant.base_overrides or deployed(variant.stack)
    base_records, ctx = stack_records(variant.stack, base_overrides)
    if variant.base_mutate is not None:
        base_records = variant.base_mutate(base_records)
    before = findings(audit(base_records, ctx))

    if variant.config_change is not None:
        records, ctx = stack_records(variant.stack, {**base_overrides, **variant.config_change})
        if variant.base_mutate is not None:
            records = variant.base_mutate(records)
    else:
        records = variant.mutate(base_records)
    after = findings(audit(records, ctx))

    new = after - before
    assert new, f"{variant.id}: no new violation (expected {variant.rule})"
    assert {rule for rule, _, _ in new} == {variant.rule}, f"{variant.id}: unrelated rules fired: {sorted(new)}"
    assert before - after == set(), f"{variant.id}: the mutation also removed findings {sorted(before - after)}"
