"""Rules over hand-built records: the edge cases the stacks do not exercise (older provider shapes,
unknown values, exemptions), each with a compliant twin so a rule that always fires fails here."""

from __future__ import annotations

import json

import pytest
from policy_testkit import ctx, doc, res, stack_resource

from kernel.aws_model import UNKNOWN
from policies.engine import evaluate
from policies.rules import RULES, RULES_BY_ID

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1111"
TLS = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def fired(records, context=None, rule=None) -> dict[str, list[str]]:
    """rule id -> messages, for one rule or all."""
    rules = [RULES_BY_ID[rule]] if rule else RULES
    result = evaluate(records, context or ctx(), rules)
    out: dict[str, list[str]] = {}
    for v in result.violations:
        out.setdefault(v.rule, []).append(v.message)
    return out


# --- catalogue ---------------------------------------------------------------------------


def test_catalogue_has_30_plus_rules_with_complete_metadata():
    assert len(RULES) >= 30
    families = {r.family for r in RULES}
    assert {"s3", "kms", "iam", "sagemaker", "ecr", "monitoring", "cost", "tags"} <= families
    for r in RULES:
        assert r.id == r.id.lower() and " " not in r.id
        assert r.description.endswith(".") and "\n" not in r.description
        assert r.why and r.fix and r.severity in ("low", "medium", "high", "critical")
        assert r.scope in ("resource", "stack") and (r.scope == "stack" or r.types)


# --- S3: the three provider shapes ---------------------------------------------------------


def _v7_bucket(
    name="b",
    *,
    versioning="Enabled",
    sse="aws:kms",
    pab=True,
    tls=True,
    logging=True,
    lifecycle=True,
    ownership="BucketOwnerEnforced",
    purpose="capture",
):
    bucket = res(
        "aws:s3/bucket:Bucket",
        name,
        {"bucket": name, "arn": f"arn:aws:s3:::{name}", "tags": {"purpose": purpose}},
        id=name,
    )
    records = [
        bucket,
        res("aws:s3/bucket:Bucket", "logs", {"bucket": "logs", "tags": {"purpose": "access-logs"}}, id="logs"),
    ]

    def attach(kind: str, suffix: str, **props):
        """A v7 resource of the bucket's (`aws:s3/<kind>:<Kind>`), named after it and naming it."""
        records.append(res(f"aws:s3/{kind}:{kind[0].upper()}{kind[1:]}", f"{name}-{suffix}", {"bucket": name, **props}))

    if versioning:
        attach("bucketVersioning", "v", versioningConfiguration={"status": versioning})
    if sse:
        key = KEY_ARN if sse == "aws:kms" else None
        default = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": sse, "kmsMasterKeyId": key}}
        attach("bucketServerSideEncryptionConfiguration", "sse", rules=[default])
    flags = {"blockPublicAcls": True, "blockPublicPolicy": pab, "ignorePublicAcls": True, "restrictPublicBuckets": True}
    attach("bucketPublicAccessBlock", "pab", **flags)
    if tls:
        attach("bucketPolicy", "policy", policy=doc(TLS))
    if logging:
        attach("bucketLogging", "log", targetBucket="logs", targetPrefix="b/")
    if lifecycle:
        attach(
            "bucketLifecycleConfiguration", "lc", rules=[{"id": "x", "status": "Enabled", "expiration": {"days": 30.0}}]
        )
    if ownership:
        attach("bucketOwnershipControls", "own", rule={"objectOwnership": ownership})
    return records


S3_RULES = (
    "s3-bucket-kms-encryption",
    "s3-bucket-versioning",
    "s3-public-access-block",
    "s3-tls-only",
    "s3-access-logging",
    "s3-lifecycle",
    "s3-no-public-grants",
    "s3-object-ownership-enforced",
)


def _only_bucket_b(found: dict[str, list[str]]) -> set[str]:
    """Rules that fired on bucket b (the log bucket 'logs' is deliberately bare)."""
    return {rule for rule, messages in found.items() if any("bucket b " in m or m.startswith("b ") for m in messages)}


def test_compliant_v7_bucket_passes_every_s3_rule():
    found = {r: m for r, m in fired(_v7_bucket()).items() if r in S3_RULES}
    assert _only_bucket_b(found) == set()


@pytest.mark.parametrize(
    "change, rule",
    [
        (dict(versioning="Suspended"), "s3-bucket-versioning"),
        (dict(sse="AES256"), "s3-bucket-kms-encryption"),
        (dict(sse=None), "s3-bucket-kms-encryption"),
        (dict(pab=False), "s3-public-access-block"),
        (dict(tls=False), "s3-tls-only"),
        (dict(logging=False), "s3-access-logging"),
        (dict(lifecycle=False), "s3-lifecycle"),
        (dict(ownership="ObjectWriter"), "s3-object-ownership-enforced"),
    ],
)
def test_each_v7_bucket_setting_is_checked(change, rule):
    found = {r: m for r, m in fired(_v7_bucket(**change)).items() if r in S3_RULES}
    assert _only_bucket_b(found) == {rule}


def test_the_log_target_is_exempt_from_kms_and_logging_but_not_versioning():
    found = fired(_v7_bucket())
    on_logs = {r for r, messages in found.items() if any("bucket logs " in m for m in messages)}
    assert "s3-bucket-kms-encryption" not in on_logs and "s3-access-logging" not in on_logs
    assert "s3-bucket-versioning" in on_logs  # it has no versioning resource in this fixture


def test_lifecycle_applies_only_to_capture_and_artifact_data():
    assert "s3-lifecycle" not in _only_bucket_b(fired(_v7_bucket(lifecycle=False, purpose="data")))
    records = _v7_bucket(lifecycle=False, purpose="artifacts")
    assert "s3-lifecycle" in _only_bucket_b(fired(records))


def test_abort_multipart_alone_is_not_a_retention_rule():
    records = [r for r in _v7_bucket() if not r.name.endswith("-lc")]
    records.append(
        res(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "b-lc",
            {
                "bucket": "b",
                "rules": [
                    {"id": "a", "status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0}}
                ],
            },
        )
    )
    assert "s3-lifecycle" in _only_bucket_b(fired(records))


def test_v5_inline_bucket_is_read():
    good = res(
        "aws:s3/bucket:Bucket",
        "legacy",
        {
            "bucket": "legacy",
            "versioning": {"enabled": True, "mfaDelete": False},
            "serverSideEncryptionConfiguration": {
                "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}}
            },
            "loggings": [{"targetBucket": "logs", "targetPrefix": "legacy/"}],
            "lifecycleRules": [{"enabled": True, "expiration": {"days": 30}}],
            "tags": {"purpose": "capture"},
            "policy": doc(TLS),
        },
        source="state",
    )
    bad = res(
        "aws:s3/bucket:Bucket",
        "legacy",
        {
            "bucket": "legacy",
            "versioning": {"enabled": False},
            "serverSideEncryptionConfiguration": {
                "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
            },
            "lifecycleRules": [{"enabled": False, "expiration": {"days": 30}}],
            "tags": {"purpose": "capture"},
            "acl": "public-read",
        },
        source="state",
    )
    rules = (
        "s3-bucket-versioning",
        "s3-bucket-kms-encryption",
        "s3-access-logging",
        "s3-lifecycle",
        "s3-tls-only",
        "s3-no-public-grants",
    )
    assert not {r for r in fired([good]) if r in rules}
    assert {r for r in fired([bad]) if r in rules} == set(rules)


def test_v6_bucketv2_plural_blocks_are_read():
    bucket = res(
        "aws:s3/bucketV2:BucketV2",
        "v6",
        {
            "bucket": "v6",
            "versionings": [{"enabled": True}],
            "serverSideEncryptionConfigurations": [
                {
                    "rules": [
                        {
                            "applyServerSideEncryptionByDefaults": [
                                {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
                            ]
                        }
                    ]
                }
            ],
            "loggings": [{"targetBucket": "logs"}],
        },
        source="state",
    )
    versioning = res(
        "aws:s3/bucketVersioningV2:BucketVersioningV2",
        "v6-v",
        {"bucket": "v6", "versioningConfiguration": {"status": "Suspended"}},
        source="state",
    )
    found = fired([bucket])
    assert not {"s3-bucket-versioning", "s3-bucket-kms-encryption", "s3-access-logging"} & set(found)
    # the V2 separate resource is recognised too (here, alongside inline versioning that is on)
    assert "s3-bucket-versioning" not in fired([bucket, versioning])


def test_unknown_bucket_reference_falls_back_to_dependencies():
    bucket = res("aws:s3/bucket:Bucket", "b", {"bucket": UNKNOWN}, id="")
    versioning = res(
        "aws:s3/bucketVersioning:BucketVersioning",
        "b-v",
        {"bucket": UNKNOWN, "versioningConfiguration": {"status": "Enabled"}},
        deps=(bucket.urn,),
    )
    assert "s3-bucket-versioning" not in fired([bucket, versioning], rule="s3-bucket-versioning")
    assert "s3-bucket-versioning" in fired([bucket], rule="s3-bucket-versioning")


def test_public_policy_with_account_condition_is_not_public():
    scoped = {
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }
    anyone_scoped = {**scoped, "Principal": "*"}
    anyone = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*"}
    policy = lambda *s: res("aws:s3/bucketPolicy:BucketPolicy", "p", {"bucket": "b", "policy": doc(*s)})  # noqa: E731
    assert not fired([policy(scoped, anyone_scoped)], rule="s3-no-public-grants")
    assert fired([policy(anyone)], rule="s3-no-public-grants")


# --- KMS ---------------------------------------------------------------------------------


def test_kms_rotation_and_asymmetric_exemption():
    assert fired([res("aws:kms/key:Key", "k", {})], rule="kms-key-rotation")  # default is off
    assert not fired([res("aws:kms/key:Key", "k", {"enableKeyRotation": True})], rule="kms-key-rotation")
    assert not fired([res("aws:kms/key:Key", "k", {"customerMasterKeySpec": "RSA_2048"})], rule="kms-key-rotation")


def test_kms_policy_root_principal_is_fine_and_star_is_not():
    root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
    star = {**root, "Principal": "*"}
    scoped_use = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:CallerAccount": "1"}},
    }
    key = lambda *s: res("aws:kms/key:Key", "k", {"enableKeyRotation": True, "policy": doc(*s)})  # noqa: E731
    assert not fired([key(root, scoped_use)], rule="kms-key-policy-no-public")
    assert fired([key(star)], rule="kms-key-policy-no-public")
    assert fired([key({**scoped_use, "Condition": {}})], rule="kms-key-policy-no-public")


# --- IAM ---------------------------------------------------------------------------------


def _role_policy(*statements, name="rp"):
    return res("aws:iam/rolePolicy:RolePolicy", name, {"role": "r", "policy": doc(*statements)})


def test_wildcard_action_and_notaction():
    assert fired([_role_policy({"Effect": "Allow", "Action": "*", "Resource": "*"})], rule="iam-no-wildcard-action")
    assert fired(
        [_role_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})], rule="iam-no-wildcard-action"
    )
    assert not fired([_role_policy({"Effect": "Deny", "Action": "*", "Resource": "*"})], rule="iam-no-wildcard-action")


WRITE = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}
PUT_METRICS = {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}


@pytest.mark.parametrize(
    "statement, fires",
    [
        (WRITE, True),
        ({"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": ["s3:GetObject", "s3:List*"], "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}, False),
        ({**PUT_METRICS, "Condition": {"StringEquals": {"cloudwatch:namespace": "X"}}}, False),
        ({**WRITE, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, True),  # a weak condition scopes nothing
    ],
)
def test_wildcard_resource_only_for_writes_and_not_for_star_only_actions(statement, fires):
    assert bool(fired([_role_policy(statement)], rule="iam-no-wildcard-resource-write")) is fires


def test_role_inline_policies_are_checked_but_observed_copies_of_role_policies_are_not():
    bad = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    declared = res("aws:iam/role:Role", "r", {"name": "r", "inlinePolicies": [{"name": "x", "policy": bad}]})
    assert fired([declared], rule="iam-no-wildcard-action")
    observed = res(
        "aws:iam/role:Role",
        "r",
        {"name": "r", "inlinePolicies": [{"name": "rp", "policy": bad}]},
        observed=frozenset({"inlinePolicies"}),
        source="state",
    )
    rp = res("aws:iam/rolePolicy:RolePolicy", "rp", {"name": "rp", "role": "r", "policy": bad}, source="state")
    messages = fired([observed, rp], rule="iam-no-wildcard-action")["iam-no-wildcard-action"]
    assert len(messages) == 1 and messages[0].startswith("rp ")


def test_full_access_managed_policies():
    rule = "iam-no-full-access-policy"
    role = lambda arns: res("aws:iam/role:Role", "r", {"managedPolicyArns": arns})  # noqa: E731
    assert fired([role(["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"])], rule=rule)
    assert fired([role(["arn:aws:iam::aws:policy/AdministratorAccess"])], rule=rule)
    assert fired(
        [
            res(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "a",
                {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
            )
        ],
        rule=rule,
    )
    assert not fired(
        [
            role(
                ["arn:aws:iam::aws:policy/AmazonSageMakerReadOnly", "arn:aws:iam::123456789012:policy/MyFullAccessCopy"]
            )
        ],
        rule=rule,
    )


def _trusting(statement):
    return res("aws:iam/role:Role", "r", {"assumeRolePolicy": doc(statement)})


def test_trust_policies():
    service = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert not fired([_trusting(service)], rule="iam-trust-no-wildcard-principal")
    assert fired([_trusting({**service, "Principal": "*"})], rule="iam-trust-no-wildcard-principal")
    assert fired([_trusting({**service, "Principal": {"AWS": ["*"]}})], rule="iam-trust-no-wildcard-principal")


@pytest.mark.parametrize(
    "condition, ok",
    [
        ({"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:org/app:environment:prod"}}, True),
        ({"StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/app:*"}}, False),  # any branch or PR
        ({"StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/*"}}, False),
        ({"StringLike": {"token.actions.githubusercontent.com:sub": "*"}}, False),
        ({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}, False),
        ({"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:other/app:environment:prod"}}, False),
    ],
)
def test_oidc_subject_must_name_this_repository(condition, ok):
    statement = {
        "Effect": "Allow",
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
        "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
    }
    found = fired([_trusting(statement)], ctx(github_repository="org/app"), rule="iam-oidc-trust-subject")
    assert bool(found) is not ok


def test_policy_management_conflict_ignores_what_state_merely_observed():
    role = res("aws:iam/role:Role", "r", {"name": "r", "managedPolicyArns": ["arn:aws:iam::1:policy/p"]}, id="r")
    attachment = res(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", {"role": "r", "policyArn": "arn:aws:iam::1:policy/q"}
    )
    assert fired([role, attachment], rule="iam-role-policy-management-conflict")
    observed = res(
        "aws:iam/role:Role",
        "r",
        {"name": "r", "managedPolicyArns": ["arn:aws:iam::1:policy/q"]},
        id="r",
        observed=frozenset({"managedPolicyArns"}),
        source="state",
    )
    assert not fired([observed, attachment], rule="iam-role-policy-management-conflict")


# --- SageMaker ---------------------------------------------------------------------------


def _endpoint_graph(*, dims=None, variant="primary", serverless=False, alarms=True):
    variant_props = {"variantName": variant, "modelName": "m"}
    variant_props.update(
        {"serverlessConfig": {"memorySizeInMb": 2048.0, "maxConcurrency": 5.0}}
        if serverless
        else {"instanceType": "ml.m5.large", "initialInstanceCount": 1.0}
    )
    records = [
        res("aws:sagemaker/model:Model", "model", {"name": "m", "enableNetworkIsolation": True}),
        res(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "cfg",
            {"name": "cfg-1", "productionVariants": [variant_props], "kmsKeyArn": None if serverless else KEY_ARN},
        ),
        res("aws:sagemaker/endpoint:Endpoint", "ep", {"name": "ep-1", "endpointConfigName": "cfg-1"}),
    ]
    if alarms:
        d = dims if dims is not None else {"EndpointName": "ep-1", "VariantName": "primary"}
        for metric in ("Invocation5XXErrors", "ModelLatency"):
            records.append(
                res(
                    "aws:cloudwatch/metricAlarm:MetricAlarm",
                    metric,
                    {
                        "name": metric,
                        "namespace": "AWS/SageMaker",
                        "metricName": metric,
                        "dimensions": d,
                        "alarmActions": ["arn:aws:sns:us-east-1:1:t"],
                    },
                )
            )
    return records


@pytest.mark.parametrize(
    "dims, ok",
    [
        ({"EndpointName": "ep-1", "VariantName": "primary"}, True),
        ({"EndpointName": "ep-1"}, False),
        ({"EndpointName": "ep-1", "VariantName": "blue"}, False),
        ({"EndpointName": "other", "VariantName": "primary"}, False),
    ],
)
def test_endpoint_alarms_must_match_endpoint_and_variant(dims, ok):
    found = fired(_endpoint_graph(dims=dims))
    assert ("sagemaker-endpoint-5xx-alarm" in found) is not ok
    assert ("sagemaker-endpoint-latency-alarm" in found) is not ok


def test_alarm_through_metric_queries_counts():
    records = _endpoint_graph(alarms=False) + [
        res(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "math",
            {
                "name": "math",
                "alarmActions": ["t"],
                "metricQueries": [
                    {
                        "id": "e",
                        "metric": {
                            "namespace": "AWS/SageMaker",
                            "metricName": "Invocation5XXErrors",
                            "dimensions": {"EndpointName": "ep-1", "VariantName": "primary"},
                        },
                    }
                ],
            },
        )
    ]
    found = fired(records)
    assert "sagemaker-endpoint-5xx-alarm" not in found and "sagemaker-endpoint-latency-alarm" in found


def test_serverless_configs_need_no_volume_key_but_instance_ones_do():
    assert not fired(_endpoint_graph(serverless=True), rule="sagemaker-endpoint-config-kms")
    records = _endpoint_graph()
    records[1] = res(records[1].type, "cfg", {**records[1].props, "kmsKeyArn": None})
    assert fired(records, rule="sagemaker-endpoint-config-kms")


def test_data_capture_required_only_in_staging_and_prod():
    assert not fired(_endpoint_graph(), ctx(environment="dev"), rule="sagemaker-endpoint-data-capture")
    found = fired(_endpoint_graph(serverless=True), ctx(environment="prod"), rule="sagemaker-endpoint-data-capture")
    assert "serverless endpoints cannot capture" in found["sagemaker-endpoint-data-capture"][0]


def test_model_vpc_exempts_serverless_only_models():
    assert fired(_endpoint_graph(), ctx(has_vpc=True), rule="sagemaker-model-vpc")
    assert not fired(_endpoint_graph(serverless=True), ctx(has_vpc=True), rule="sagemaker-model-vpc")
    assert not fired(_endpoint_graph(), ctx(has_vpc=False), rule="sagemaker-model-vpc")


TRAINING = {
    "allowedInstanceTypes": ["ml.g5.xlarge"],
    "defaultInstanceType": "ml.g5.xlarge",
    "useSpot": True,
    "maxRuntimeSeconds": 3600,
    "maxWaitSeconds": 7200,
    "checkpointS3Uri": "s3://a/checkpoints/",
    "volumeKmsKeyArn": KEY_ARN,
    "vpc": {"subnetIds": [], "securityGroupIds": []},
}


def _training(**changes):
    return [stack_resource({"trainingDefaults": {**TRAINING, **changes}})]


def test_training_rules_pass_a_good_dev_setup_and_catch_each_problem():
    dev = ctx(environment="dev", allowed_training_types=("ml.g5.xlarge",))
    training_rules = {r.id for r in RULES if r.id.startswith("sagemaker-training")}
    assert not set(fired(_training(), dev)) & training_rules
    cases = {
        "sagemaker-training-instance-allowlist": dict(defaultInstanceType="ml.p4d.24xlarge"),
        "sagemaker-training-spot-checkpoints": dict(useSpot=False),
        "sagemaker-training-max-runtime": dict(maxRuntimeSeconds=0),
        "sagemaker-training-volume-kms": dict(volumeKmsKeyArn=""),
    }
    for rule, change in cases.items():
        assert set(fired(_training(**change), dev)) & training_rules == {rule}, rule
    assert set(fired(_training(maxWaitSeconds=60), dev)) & training_rules == {"sagemaker-training-spot-checkpoints"}
    assert fired(_training(), ctx(environment="dev", has_vpc=True), rule="sagemaker-training-vpc")


def test_environment_ceiling_applies_even_when_the_stack_allows_more():
    prod_types = ctx(environment="dev", allowed_training_types=("ml.g5.xlarge", "ml.p5.48xlarge"))
    found = fired(
        _training(allowedInstanceTypes=["ml.g5.xlarge", "ml.p5.48xlarge"]),
        prod_types,
        rule="sagemaker-training-instance-allowlist",
    )
    assert "above the dev GPU ceiling" in found["sagemaker-training-instance-allowlist"][0]
    assert not fired(
        _training(defaultInstanceType="ml.p5.48xlarge", allowedInstanceTypes=["ml.p5.48xlarge"]),
        ctx(environment="prod", allowed_training_types=("ml.p5.48xlarge",)),
        rule="sagemaker-training-instance-allowlist",
    )


def test_iam_instance_type_condition_outside_the_allowlist():
    statement = {
        "Effect": "Allow",
        "Action": "sagemaker:CreateTrainingJob",
        "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.p5.48xlarge"]}},
    }
    found = fired(
        [_role_policy(statement)],
        ctx(environment="dev", allowed_training_types=("ml.g5.xlarge",)),
        rule="sagemaker-training-instance-allowlist",
    )
    assert "ml.p5.48xlarge" in found["sagemaker-training-instance-allowlist"][0]


def test_package_group_must_exist_for_deployed_models():
    model = res(
        "aws:sagemaker/model:Model",
        "m",
        {
            "name": "m",
            "enableNetworkIsolation": True,
            "primaryContainer": {"modelPackageName": "arn:aws:sagemaker:us-east-1:1:model-package/churn-staging/3"},
        },
    )
    group = res("aws:sagemaker/modelPackageGroup:ModelPackageGroup", "g", {"modelPackageGroupName": "churn-prod"})
    context = ctx(models=("churn",))
    assert not fired([model, group], context, rule="sagemaker-model-package-group-exists")
    assert fired([model], context, rule="sagemaker-model-package-group-exists")


# --- ECR, monitoring, tags ---------------------------------------------------------------


def test_ecr_rules():
    good = {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
    }
    ecr_rules = {"ecr-scan-on-push", "ecr-immutable-tags", "ecr-kms-encryption"}
    assert not set(fired([res("aws:ecr/repository:Repository", "r", good)])) & ecr_rules
    assert set(fired([res("aws:ecr/repository:Repository", "r", {})])) & ecr_rules == ecr_rules
    aws_key = {**good, "encryptionConfigurations": [{"encryptionType": "KMS"}]}
    assert fired([res("aws:ecr/repository:Repository", "r", aws_key)], rule="ecr-kms-encryption")


def test_monitoring_rules():
    assert fired([res("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": "alias/aws/sns"})], rule="sns-topic-encrypted")
    assert not fired([res("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": KEY_ARN})], rule="sns-topic-encrypted")
    alarm = {"alarmActions": ["arn:t"]}
    assert not fired([res("aws:cloudwatch/metricAlarm:MetricAlarm", "a", alarm)], rule="cloudwatch-alarm-has-action")
    assert fired(
        [res("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {**alarm, "actionsEnabled": False})],
        rule="cloudwatch-alarm-has-action",
    )
    assert fired(
        [res("aws:cloudwatch/logGroup:LogGroup", "l", {"retentionInDays": 0.0, "kmsKeyId": KEY_ARN})],
        rule="cloudwatch-log-group-retention",
    )


def test_tags_include_provider_default_tags_and_tags_all():
    provider = res("pulumi:providers:aws", "default", {"defaultTags": {"tags": {"owner": "me"}}})
    needs = ctx(required_tags=("owner", "environment"))
    bucket = res("aws:s3/bucket:Bucket", "b", {"tags": {"environment": "dev"}}, provider=provider.urn)
    assert not fired([provider, bucket], needs, rule="tags-required")
    assert fired([bucket], needs, rule="tags-required")
    state = res("aws:s3/bucket:Bucket", "b", {"tagsAll": {"environment": "dev", "owner": "me"}}, source="state")
    assert not fired([state], needs, rule="tags-required")
    assert not fired([res("aws:s3/bucketPolicy:BucketPolicy", "p", {})], needs, rule="tags-required")  # not taggable


def test_provider_default_tags_are_read_from_their_wire_form_json_text():
    """The engine, state exports and the mocks hold a provider's object settings as JSON text."""
    wire = json.dumps({"tags": {"owner": "me", "environment": "dev"}})
    provider = res("pulumi:providers:aws", "aws", {"defaultTags": wire})
    bucket = res("aws:s3/bucket:Bucket", "b", {}, provider=provider.urn)
    needs = ctx(required_tags=("owner", "environment"))
    assert not fired([provider, bucket], needs, rule="tags-required")
    garbled = res("pulumi:providers:aws", "aws", {"defaultTags": "{not json"})
    assert fired([garbled, bucket], needs, rule="tags-required")


def test_unknown_values_never_produce_violations():
    unknown = [
        res("aws:kms/key:Key", "k", {"enableKeyRotation": UNKNOWN, "policy": UNKNOWN, "tags": UNKNOWN}),
        res(
            "aws:ecr/repository:Repository",
            "r",
            {
                "imageScanningConfiguration": {"scanOnPush": UNKNOWN},
                "imageTagMutability": UNKNOWN,
                "tags": UNKNOWN,
                "encryptionConfigurations": [{"encryptionType": UNKNOWN}],
            },
        ),
        res("aws:iam/role:Role", "role", {"assumeRolePolicy": UNKNOWN, "tags": UNKNOWN}),
        res("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": UNKNOWN, "tags": UNKNOWN}),
    ]
    assert fired(unknown, ctx(required_tags=("owner",))) == {}
