"""The mutation suite: insecure variants of the real stacks, each caught by its rule and no other.

Each variant starts from a stack's offline preview with its model deployed (shipped stacks have
no approved package, hence no endpoint), breaks one thing — by editing the preview's records
the way a careless change to infra/ would, or through the stack config where that is the
natural change — and must produce new violations of exactly the intended rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from policy_testkit import (
    audit,
    deployed,
    drop,
    edit,
    edit_outputs,
    edit_policy,
    find,
    findings,
    res,
    stack_records,
)

from policies.records import Resource

Mutate = Callable[[list[Resource]], list[Resource]]
VPC = {"subnetIds": ["subnet-0a1b2c3d4e5f60718"], "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}
BRING_VPC = {"mlops:vpc": VPC, "mlops:network": {"enabled": False}}  # instead of the stack's own network


@dataclass(frozen=True)
class Variant:
    id: str
    rule: str
    stack: str
    mutate: Mutate | None = None
    base_overrides: dict[str, Any] | None = None  # config of the base (model deployed unless given)
    config_change: dict[str, Any] | None = None  # a config-level mutation on top of the base


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props[key] = value

    return change


def _pop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.pop(key, None)

    return change


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
    return edit(
        records,
        "BucketPolicy",
        "storage-data",
        _in_policy(
            "policy",
            _append(
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"{bucket_arn}/*",
                }
            ),
        ),
    )


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
    return edit(
        records,
        "RolePolicy",
        "training-execution-permissions",
        _in_policy(
            "policy",
            _append(
                {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": f"{_artifacts_arn(records)}/*"}
            ),
        ),
    )


def _wildcard_resource(records):
    return edit(
        records,
        "RolePolicy",
        "training-execution-permissions",
        _in_policy(
            "policy",
            _append(
                {
                    "Sid": "WriteAnywhere",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": "*",
                }
            ),
        ),
    )


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
    return edit(
        records,
        "RolePolicy",
        "training-execution-permissions",
        _in_policy(
            "policy",
            _append(
                {
                    "Sid": "StartTraining",
                    "Effect": "Allow",
                    "Action": "sagemaker:CreateTrainingJob",
                    "Resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/mlops-prod-*",
                }
            ),
        ),
    )


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
    def change(props):
        props["tags"] = {k: v for k, v in props["tags"].items() if k != tag}

    return lambda records: edit(records, type_suffix, name, change)


VARIANTS = [
    # S3
    Variant("public-access-block-flag-off", "s3-public-access-block", "prod", _pab_flag_off),
    Variant("bucket-policy-public-read", "s3-no-public-grants", "prod", _public_read_statement),
    Variant("artifacts-sse-s3-not-kms", "s3-bucket-kms-encryption", "prod", _sse_s3),
    Variant(
        "capture-unversioned", "s3-bucket-versioning", "prod", lambda r: drop(r, "BucketVersioning", "storage-capture")
    ),
    Variant("data-bucket-without-tls-policy", "s3-tls-only", "prod", lambda r: drop(r, "BucketPolicy", "storage-data")),
    Variant("data-bucket-not-logged", "s3-access-logging", "prod", lambda r: drop(r, "BucketLogging", "storage-data")),
    Variant(
        "capture-kept-forever",
        "s3-lifecycle",
        "prod",
        lambda r: drop(r, "BucketLifecycleConfiguration", "storage-capture"),
    ),
    Variant("acls-enabled", "s3-object-ownership-enforced", "prod", _ownership_writer),
    # KMS
    Variant(
        "key-rotation-off",
        "kms-key-rotation",
        "prod",
        lambda r: edit(r, "kms/key:Key", "storage-key", _set("enableKeyRotation", False)),
    ),
    Variant("key-policy-to-anyone", "kms-key-policy-no-public", "prod", _key_policy_public),
    # IAM
    Variant("wildcard-action", "iam-no-wildcard-action", "prod", _wildcard_action),
    Variant("write-on-any-resource", "iam-no-wildcard-resource-write", "prod", _wildcard_resource),
    Variant("sagemaker-full-access", "iam-no-full-access-policy", "prod", _full_access_attachment),
    Variant("trust-any-principal", "iam-trust-no-wildcard-principal", "prod", _trust_anyone),
    Variant("oidc-any-repository-of-org", "iam-oidc-trust-subject", "prod", _oidc_any_repository),
    Variant("inline-and-separate-policies", "iam-role-policy-management-conflict", "prod", _inline_and_role_policy),
    Variant(
        "training-any-instance-type",
        "iam-training-instance-type-condition",
        "prod",
        _training_without_instance_condition,
    ),
    # SageMaker
    Variant(
        "unencrypted-endpoint",
        "sagemaker-endpoint-config-kms",
        "prod",
        lambda r: edit(r, "EndpointConfiguration", "serving-churn-config", _pop("kmsKeyArn")),
    ),
    Variant("prod-endpoint-without-capture", "sagemaker-endpoint-data-capture", "prod", _no_capture),
    Variant(
        "staging-capture-off",
        "sagemaker-endpoint-data-capture",
        "staging",
        config_change={
            "mlops:serving": {
                "mode": "instance",
                "instanceType": "ml.m5.xlarge",
                "initialInstanceCount": 1,
                "autoscaling": {"minCapacity": 1, "maxCapacity": 2, "targetInvocationsPerInstance": 200},
                "rollout": {"type": "linear", "stepPercent": 50, "bakeSeconds": 300},
                "dataCaptureSamplingPercent": 0,
            }
        },
    ),
    Variant(
        "model-with-network",
        "sagemaker-model-network-isolation",
        "prod",
        lambda r: edit(r, "sagemaker/model:Model", "serving-churn-model", _set("enableNetworkIsolation", False)),
    ),
    Variant(
        "model-outside-vpc",
        "sagemaker-model-vpc",
        "prod",
        lambda r: edit(r, "sagemaker/model:Model", "serving-churn-model", _pop("vpcConfig")),
        base_overrides=deployed("prod", **BRING_VPC),
    ),
    Variant(
        "training-outside-vpc",
        "sagemaker-training-vpc",
        "prod",
        _outputs(lambda td: td.update(vpc={"subnetIds": [], "securityGroupIds": []})),
        base_overrides=deployed("prod", **BRING_VPC),
    ),
    Variant(
        "5xx-alarm-missing-variant-dimension",
        "sagemaker-endpoint-5xx-alarm",
        "prod",
        _alarm_dims("monitoring-churn-5xx", {"EndpointName": "mlops-prod-churn"}),
    ),
    Variant(
        "latency-alarm-on-another-endpoint",
        "sagemaker-endpoint-latency-alarm",
        "prod",
        _alarm_dims("monitoring-churn-latency", {"EndpointName": "mlops-prod-other", "VariantName": "primary"}),
    ),
    Variant("prod-rollout-without-rollback", "sagemaker-endpoint-rollout-rollback", "prod", _no_rollback),
    Variant(
        "no-package-group",
        "sagemaker-model-package-group-exists",
        "prod",
        lambda r: drop(r, "ModelPackageGroup", "registry-churn"),
    ),
    Variant(
        "package-group-shared-with-anyone", "sagemaker-package-group-policy-no-public", "dev", _public_package_group
    ),
    Variant(
        "gpu-outside-allowlist",
        "sagemaker-training-instance-allowlist",
        "dev",
        _outputs(lambda td: td.update(defaultInstanceType="ml.p5.48xlarge")),
    ),
    Variant(
        "dev-on-demand-training",
        "sagemaker-training-spot-checkpoints",
        "dev",
        config_change={
            "mlops:training": {
                "allowedInstanceTypes": ["ml.g5.xlarge"],
                "defaultInstanceType": "ml.g5.xlarge",
                "spot": False,
                "maxRuntimeSeconds": 7200,
                "maxWaitSeconds": 7200,
            }
        },
    ),
    Variant(
        "unbounded-training", "sagemaker-training-max-runtime", "prod", _outputs(lambda td: td.pop("maxRuntimeSeconds"))
    ),
    Variant(
        "training-volume-unencrypted",
        "sagemaker-training-volume-kms",
        "prod",
        _outputs(lambda td: td.pop("volumeKmsKeyArn")),
    ),
    # ECR
    Variant(
        "no-scan-on-push",
        "ecr-scan-on-push",
        "prod",
        lambda r: edit(
            r, "ecr/repository:Repository", "registry-images", _set("imageScanningConfiguration", {"scanOnPush": False})
        ),
    ),
    Variant(
        "mutable-tags",
        "ecr-immutable-tags",
        "prod",
        lambda r: edit(r, "ecr/repository:Repository", "registry-images", _set("imageTagMutability", "MUTABLE")),
    ),
    Variant(
        "images-aes256",
        "ecr-kms-encryption",
        "prod",
        lambda r: edit(
            r,
            "ecr/repository:Repository",
            "registry-images",
            _set("encryptionConfigurations", [{"encryptionType": "AES256"}]),
        ),
    ),
    # SNS / CloudWatch
    Variant(
        "topic-unencrypted",
        "sns-topic-encrypted",
        "prod",
        lambda r: edit(r, "sns/topic:Topic", "monitoring-alerts", _pop("kmsMasterKeyId")),
    ),
    Variant("topic-open-to-anyone", "sns-topic-policy-no-public", "prod", _public_topic),
    Variant(
        "silent-alarm",
        "cloudwatch-alarm-has-action",
        "prod",
        lambda r: edit(r, "MetricAlarm", "monitoring-training-failed", _set("alarmActions", [])),
    ),
    Variant(
        "logs-forever",
        "cloudwatch-log-group-retention",
        "prod",
        lambda r: edit(r, "LogGroup", "training-pipeline-logs", _pop("retentionInDays")),
    ),
    Variant(
        "logs-unencrypted",
        "cloudwatch-log-group-kms",
        "prod",
        lambda r: edit(r, "LogGroup", "training-pipeline-logs", _pop("kmsKeyId")),
    ),
    # Cost
    Variant("no-budget", "cost-budget-exists", "prod", lambda r: drop(r, "budgets/budget:Budget", "monitoring-budget")),
    Variant(
        "gpu-endpoint-over-budget",
        "cost-within-budget",
        "prod",
        config_change={
            "mlops:serving": {
                "mode": "instance",
                "instanceType": "ml.p3.2xlarge",
                "initialInstanceCount": 2,
                "autoscaling": {"minCapacity": 2, "maxCapacity": 8, "targetInvocationsPerInstance": 300},
                "rollout": {"type": "canary", "stepPercent": 10, "bakeSeconds": 600},
                "dataCaptureSamplingPercent": 20,
            }
        },
    ),
    # The budget is raised so that the estimate stays within it: this variant is about the idle GPU itself.
    Variant(
        "dev-endpoint-bills-by-the-hour",
        "cost-no-always-on-gpu-in-dev",
        "dev",
        _dev_gpu_endpoint,
        base_overrides=deployed(
            "dev",
            **{
                "mlops:monitoring": {
                    "alertEmail": "ml-platform-dev@example.com",
                    "latencyP99Ms": 1000,
                    "error5xxThreshold": 10,
                    "driftThreshold": 0.25,
                    "monthlyBudgetUsd": 3000,
                }
            },
        ),
    ),
    # Tags
    Variant("key-without-owner", "tags-required", "prod", _drop_tag("kms/key:Key", "storage-key", "owner")),
]


def test_the_suite_is_big_enough_and_covers_most_rules():
    from policies.rules import RULES

    assert len(VARIANTS) >= 30
    assert len({v.id for v in VARIANTS}) == len(VARIANTS)
    covered = {v.rule for v in VARIANTS}
    assert covered <= {r.id for r in RULES}
    assert len(covered) >= 40


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_variant_is_caught_by_its_rule_and_no_other(variant: Variant):
    base_overrides = variant.base_overrides or deployed(variant.stack)
    base_records, ctx = stack_records(variant.stack, base_overrides)
    before = findings(audit(base_records, ctx))

    if variant.config_change is not None:
        records, ctx = stack_records(variant.stack, {**base_overrides, **variant.config_change})
    else:
        records = variant.mutate(base_records)
    after = findings(audit(records, ctx))

    new = after - before
    assert new, f"{variant.id}: no new violation (expected {variant.rule})"
    assert {rule for rule, _, _ in new} == {variant.rule}, f"{variant.id}: unrelated rules fired: {sorted(new)}"
    assert before - after == set(), f"{variant.id}: the mutation also removed findings {sorted(before - after)}"
