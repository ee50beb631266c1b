"""Every stack previews offline, exports the whole outputs contract, and holds its security properties."""

import json
import subprocess
import sys

import pytest

from infra.preview import ACCOUNT_ID
from kernel.stack_outputs import OUTPUT_KEYS, StackOutputs

APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"  # as in conftest.py


def custom(preview, type_token):
    return [r for r in preview.resources if r["type"] == type_token]


def by_bucket(preview, type_token):
    """Bucket sub-resources keyed by the bucket they configure."""
    return {r["props"]["bucket"]: r["props"] for r in custom(preview, type_token)}


def doc(value):
    return json.loads(value) if isinstance(value, str) else value


def statements(policy):
    found = doc(policy)["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value):
    return value if isinstance(value, list) else [value]


# --- the graph and the contract ------------------------------------------------------------


def test_outputs_contract_is_complete(shipped):
    assert set(shipped.outputs) == set(OUTPUT_KEYS)
    outputs = StackOutputs.from_dict(shipped.outputs)
    stack = shipped.stack
    assert outputs.stackName == stack
    assert outputs.dataBucket == f"mlops-{stack}-data-{ACCOUNT_ID}"
    assert outputs.executionRoleArn == f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-{stack}-sagemaker-execution"
    assert outputs.modelPackageGroups == {"churn": f"churn-{stack}"}
    assert outputs.trainingDefaults.checkpointS3Uri == f"s3://mlops-{stack}-artifacts-{ACCOUNT_ID}/checkpoints/"
    assert outputs.trainingDefaults.defaultInstanceType in outputs.trainingDefaults.allowedInstanceTypes
    assert outputs.alertTopicArn.endswith(f":mlops-{stack}-alerts")
    assert outputs.endpoints == {}


def test_every_resource_is_parented_to_a_component(shipped):
    components = {r["urn"] for r in shipped.resources if not r["custom"] and r["type"].startswith("mlops:")}
    assert {r["type"] for r in shipped.resources if r["urn"] in components} >= {
        "mlops:storage:Storage",
        "mlops:registry:Registry",
        "mlops:training:TrainingPlatform",
        "mlops:monitoring:Monitoring",
        "mlops:identity:Identity",
    }
    aws_resources = [r for r in shipped.resources if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    orphans = [r["name"] for r in aws_resources if r["parent"] not in components]
    assert orphans == []


def test_the_explicit_provider_keeps_the_stacks_aws_settings(shipped):
    """An explicit provider reads no `aws:` stack config: the program passes it on, typed."""
    (provider,) = [r["props"] for r in shipped.resources if r["type"] == "pulumi:providers:aws"]
    assert provider["region"] == shipped.config.region
    if shipped.stack == "local":
        assert "http://127.0.0.1:5000" in provider["endpoints"]
        assert provider["skipCredentialsValidation"] == "true"  # a boolean, not the text "true"


def test_every_resource_is_tagged_through_the_stack_provider(shipped):
    """Tags are the provider's default_tags, not per-resource copies; the tag rule still sees them."""
    from policies.graph import StackGraph
    from policies.records import from_preview_graph
    from policies.rules.tags import TAGGABLE, effective_tags

    (provider,) = [r for r in shipped.resources if r["type"] == "pulumi:providers:aws"]
    aws_resources = [r for r in shipped.resources if r["type"].startswith("aws:")]
    assert {r["provider"].rsplit("::", 1)[0] for r in aws_resources} == {provider["urn"]}
    graph = StackGraph(from_preview_graph(shipped.resources))
    taggable = [r for r in graph.records if r.type in TAGGABLE]
    assert taggable
    for resource in taggable:
        tags = effective_tags(resource, graph)
        assert tags is not None and {"environment", "owner", "cost-center", "project"} <= set(tags), resource.name


def test_inputs_built_from_arns_survive_the_mocks(shipped):
    """A mock without ARNs silently drops every input built from one; ours must not."""
    role_policy = next(
        p for p in custom(shipped, "aws:iam/rolePolicy:RolePolicy") if p["name"] == "identity-deployer-pipeline"
    )
    assert "arn:aws:kms:" in role_policy["props"]["policy"]
    topic = custom(shipped, "aws:sns/topic:Topic")[0]
    assert topic["props"]["kmsMasterKeyId"].startswith("arn:aws:kms:")


def test_shipped_stacks_declare_no_endpoint_and_no_hourly_cost(shipped):
    for token in (
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
        "aws:appautoscaling/target:Target",
    ):
        assert custom(shipped, token) == []


def test_mlops_preview_command_table_and_json():
    table = subprocess.run(
        [sys.executable, "-m", "ci.cli", "preview", "--stack", "staging"], capture_output=True, text=True, check=True
    ).stdout
    assert "storage (mlops:storage:Storage)" in table and "aws:kms/key:Key" in table
    graph = json.loads(
        subprocess.run(
            [sys.executable, "-m", "ci.cli", "preview", "--stack", "local", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert graph["stack"] == "local" and graph["outputs"]["stackName"] == "local"
    assert {"urn", "type", "name", "props", "parent", "provider", "dependencies"} <= set(graph["resources"][1])


def test_mlops_preview_reports_bad_config_without_traceback(tmp_path):
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text("config:\n  aws:region: us-east-1\n  mlops:environment: qa\n")
    done = subprocess.run(
        [sys.executable, "-m", "ci.cli", "preview", "--stack", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "mlops:environment: 'qa' is not valid" in done.stderr and "Traceback" not in done.stderr


# --- storage -------------------------------------------------------------------------------


def test_buckets_are_versioned_encrypted_private_tls_only_and_logged(shipped):
    buckets = {r["props"]["bucket"] for r in custom(shipped, "aws:s3/bucket:Bucket")}
    assert len(buckets) == 4
    key_arn = custom(shipped, "aws:kms/key:Key")[0]["props"]["arn"]
    versioning = by_bucket(shipped, "aws:s3/bucketVersioning:BucketVersioning")
    sse = by_bucket(shipped, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    blocks = by_bucket(shipped, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    policies = by_bucket(shipped, "aws:s3/bucketPolicy:BucketPolicy")
    lifecycles = by_bucket(shipped, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    logging = by_bucket(shipped, "aws:s3/bucketLogging:BucketLogging")
    log_bucket = shipped.outputs["accessLogBucket"]
    for bucket in buckets:
        assert versioning[bucket]["versioningConfiguration"]["status"] == "Enabled"
        assert all(
            blocks[bucket][flag] is True
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        deny = [s for s in statements(policies[bucket]["policy"]) if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert lifecycles[bucket]["rules"]
        default = sse[bucket]["rules"][0]["applyServerSideEncryptionByDefault"]
        if bucket == log_bucket:  # S3 cannot deliver access logs into an SSE-KMS bucket
            assert default["sseAlgorithm"] == "AES256"
            continue
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
        assert logging[bucket]["targetBucket"] == log_bucket


def test_kms_key_rotates_and_grants_no_wildcard_principal(shipped):
    key = custom(shipped, "aws:kms/key:Key")[0]["props"]
    assert key["enableKeyRotation"] is True
    for s in statements(key["policy"]):
        assert s["Principal"] != "*" and s["Principal"] != {"AWS": "*"}


def test_capture_data_expires_after_configured_days(shipped):
    lifecycle = by_bucket(shipped, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    capture = lifecycle[shipped.outputs["captureBucket"]]
    expire = next(r for r in capture["rules"] if "expiration" in r)
    assert expire["expiration"]["days"] == shipped.config.retention.captureDays


def test_versioned_buckets_expire_what_they_expire_for_good(shipped):
    """AWS rule: S3-VERSIONED-EXPIRY. In a versioned bucket, expiring an object only adds a delete marker:
    wherever current versions expire, noncurrent ones must expire too, no later than the current ones
    (checkpoints/ used to linger as noncurrent versions for artifactDays: five years in prod)."""
    versioned = {
        b
        for b, v in by_bucket(shipped, "aws:s3/bucketVersioning:BucketVersioning").items()
        if v["versioningConfiguration"]["status"] == "Enabled"
    }
    lifecycles = by_bucket(shipped, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert versioned and versioned <= set(lifecycles)
    for bucket in versioned:
        rules = [r for r in lifecycles[bucket]["rules"] if r["status"] == "Enabled"]
        noncurrent = [
            (r["filter"]["prefix"], r["noncurrentVersionExpiration"]["noncurrentDays"])
            for r in rules
            if "noncurrentVersionExpiration" in r
        ]
        assert noncurrent, f"{bucket}: noncurrent versions never expire"
        for r in rules:
            days = r.get("expiration", {}).get("days")
            if not days:
                continue
            prefix = r["filter"]["prefix"]
            covering = [d for p, d in noncurrent if prefix.startswith(p)]
            assert covering and min(covering) <= days, (bucket, r["id"], covering, days)
        if not any(r.get("expiration", {}).get("days") for r in rules):
            # Nothing expires by age here, so S3 would keep each deleted object's last delete marker forever.
            assert any(r.get("expiration", {}).get("expiredObjectDeleteMarker") is True for r in rules), bucket


# --- registry ------------------------------------------------------------------------------


def test_ecr_scans_on_push_immutable_kms(shipped):
    repo = custom(shipped, "aws:ecr/repository:Repository")[0]["props"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfigurations"][0]["encryptionType"] == "KMS"


@pytest.mark.parametrize("stack,readers", [("dev", ["staging", "prod"]), ("staging", ["prod"])])
def test_downstream_environments_may_read_packages(preview_of, stack, readers):
    """AWS rule: IAM-SAME-ACCOUNT-RESOURCE-POLICY. In one account a resource policy's Allow adds nothing to
    IAM: the policy restricts downstream roles to reading with a Deny (it used to hold only the Allow)."""
    preview = preview_of(stack, False)
    policy = custom(preview, "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")[0]["props"]
    allow, deny = statements(policy["resourcePolicy"])
    roles = [f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-{r}-*" for r in readers]
    assert allow["Effect"] == "Allow" and allow["Condition"]["ArnLike"]["aws:PrincipalArn"] == roles
    assert all(a.startswith(("sagemaker:Describe", "sagemaker:List")) for a in allow["Action"])
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == allow["Condition"] and deny["Resource"] == allow["Resource"]
    assert sorted(deny["NotAction"]) == sorted(allow["Action"])  # everything but reading is denied to them


def test_promoted_packages_are_readable_where_they_are_deployed(preview_of):
    """prod serves a package registered (and stored) in dev: its roles can read it there, and nothing more."""
    prod = preview_of("prod", False)
    policies = {
        r["name"]: {s["Sid"]: s for s in statements(r["props"]["policy"])}
        for r in custom(prod, "aws:iam/rolePolicy:RolePolicy")
    }
    data = policies["training-execution-permissions"]["ReadPromotedModelData"]
    assert data["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert data["Resource"] == [
        f"arn:aws:s3:::mlops-{e}-artifacts-{ACCOUNT_ID}/training-output/*" for e in ("dev", "staging")
    ]
    key = policies["training-execution-permissions"]["DecryptPromotedModelData"]
    assert key["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == [
        "alias/mlops-dev",
        "alias/mlops-staging",
    ]
    image = policies["training-execution-permissions"]["PullPromotedServingImages"]
    assert image["Resource"] == [f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/mlops-{e}" for e in ("dev", "staging")]
    upstream = policies["identity-deployer-pipeline"]["ReadUpstreamPackages"]
    assert f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:model-package/*-dev/*" in upstream["Resource"]
    dev = preview_of("dev", False)
    dev_policy = next(
        r for r in custom(dev, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "training-execution-permissions"
    )
    assert "ReadPromotedModelData" not in dev_policy["props"]["policy"]


def test_prod_packages_are_read_by_nobody_else(preview_of):
    assert custom(preview_of("prod", False), "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy") == []


# --- IAM -----------------------------------------------------------------------------------

WRITE_VERBS = ("Put", "Create", "Delete", "Update", "Pass", "Stop", "Add", "Abort", "Encrypt", "Generate")


def test_roles_have_no_wildcard_actions_and_no_managed_full_access(shipped):
    for policy in custom(shipped, "aws:iam/rolePolicy:RolePolicy"):
        for s in statements(policy["props"]["policy"]):
            for action in as_list(s["Action"]):
                assert action != "*" and not action.endswith(":*"), (policy["name"], action)
                verb = action.split(":")[1]
                # a Deny on * only restricts (the guardrails, NeverApprove); an Allow on * must be conditioned
                if s["Effect"] == "Allow" and s["Resource"] == "*" and verb.startswith(WRITE_VERBS):
                    assert "Condition" in s, f"{policy['name']}: {action} on * without a condition"
    assert custom(shipped, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_execution_role_trusts_sagemaker_of_this_account_only(shipped):
    role = next(r for r in custom(shipped, "aws:iam/role:Role") if r["name"] == "training-execution-role")["props"]
    (s,) = statements(role["assumeRolePolicy"])
    assert s["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


def test_execution_role_touches_only_its_own_environment(preview_of):
    dev = preview_of("dev", False)
    policy = next(
        r for r in custom(dev, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "training-execution-permissions"
    )
    text = policy["props"]["policy"]
    assert "mlops-dev-data" in text and "mlops-dev-artifacts" in text
    for other in ("staging", "prod", "local"):
        assert f"mlops-{other}" not in text


def test_deployer_trusted_only_for_this_repository_environment(shipped):
    role = next(r for r in custom(shipped, "aws:iam/role:Role") if r["name"] == "identity-deployer")["props"]
    (s,) = statements(role["assumeRolePolicy"])
    assert s["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert s["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    # the repository's customized OIDC subject pins the workflow file, and in staging and prod the branch
    subject = f"repo:example-org/mlops-blueprint:environment:{shipped.stack}:job_workflow_ref:"
    workflows = "example-org/mlops-blueprint/.github/workflows/"
    assert s["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    if shipped.stack in ("staging", "prod"):
        subjects = s["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert subjects == [f"{subject}{workflows}promote.yml@refs/heads/main"]
    else:
        subjects = s["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]
        assert subjects == [f"{subject}{workflows}{w}@*" for w in ("train.yml", "promote.yml")]
        assert s["Condition"]["StringNotLike"] == {
            "token.actions.githubusercontent.com:sub": "repo:example-org/mlops-blueprint:*@refs/pull/*"
        }


def test_no_stack_manages_the_oidc_provider_or_a_role_without_the_boundary(preview_of):
    """The bootstrap program owns the account's OIDC provider; every stack role carries its boundary."""
    for s in ("dev", "staging", "prod"):
        preview = preview_of(s, False)
        assert not custom(preview, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        for role in custom(preview, "aws:iam/role:Role"):
            assert (
                role["props"]["permissionsBoundary"]
                == "arn:aws:iam::123456789012:policy/mlops-deploy/mlops-deploy-boundary"
            )


# --- monitoring ----------------------------------------------------------------------------


def test_topic_encrypted_and_alerting_email(shipped):
    topic = custom(shipped, "aws:sns/topic:Topic")[0]["props"]
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:")
    (sub,) = custom(shipped, "aws:sns/topicSubscription:TopicSubscription")
    assert sub["props"]["protocol"] == "email" and sub["props"]["endpoint"] == shipped.config.monitoring.alertEmail


def test_failed_training_jobs_alert_through_eventbridge(shipped):
    rules = {r["props"]["name"]: r["props"] for r in custom(shipped, "aws:cloudwatch/eventRule:EventRule")}
    rule = rules[f"mlops-{shipped.stack}-training-failed"]
    pattern = json.loads(rule["eventPattern"])
    assert pattern["detail-type"] == ["SageMaker Training Job State Change"]
    assert "Failed" in pattern["detail"]["TrainingJobStatus"]
    assert pattern["detail"]["TrainingJobName"] == [{"prefix": f"mlops-{shipped.stack}-"}]
    (target,) = [
        t for t in custom(shipped, "aws:cloudwatch/eventTarget:EventTarget") if t["props"]["rule"] == rule["name"]
    ]
    assert target["props"]["arn"] == shipped.outputs["alertTopicArn"]
    alarm = next(
        a["props"]
        for a in custom(shipped, "aws:cloudwatch/metricAlarm:MetricAlarm")
        if a["props"]["namespace"] == "AWS/Events"
    )
    assert alarm["dimensions"] == {"RuleName": rule["name"]}


def test_budget_notifies_the_topic(shipped):
    (budget,) = custom(shipped, "aws:budgets/budget:Budget")
    props = budget["props"]
    assert float(props["limitAmount"]) == shipped.config.monitoring.monthlyBudgetUsd
    assert all(n["subscriberSnsTopicArns"] == [shipped.outputs["alertTopicArn"]] for n in props["notifications"])


# --- serving, once a package is approved ----------------------------------------------------


def test_approved_package_gets_isolated_model_and_endpoint(deployed):
    """Instance endpoints isolate the model; serverless ones cannot (AWS rule SERVERLESS-EXCLUSIONS,
    changed from "every model isolated", which AWS refuses on serverless)."""
    (model,) = custom(deployed, "aws:sagemaker/model:Model")
    instance = deployed.config.serving.mode == "instance"
    assert model["props"]["enableNetworkIsolation"] is instance
    assert model["props"]["primaryContainer"]["modelPackageName"] == APPROVED
    assert model["props"]["executionRoleArn"] == deployed.outputs["executionRoleArn"]
    suffix = "" if instance else "-serverless"
    assert deployed.outputs["endpoints"] == {"churn": f"mlops-{deployed.stack}-churn{suffix}"}


def test_endpoint_alarms_watch_the_endpoint_with_exact_dimensions(deployed):
    endpoint = deployed.outputs["endpoints"]["churn"]
    alarms = {a["props"]["metricName"]: a["props"] for a in custom(deployed, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    for metric in ("Invocation5XXErrors", "ModelLatency"):
        assert alarms[metric]["namespace"] == "AWS/SageMaker"
        assert alarms[metric]["dimensions"] == {"EndpointName": endpoint, "VariantName": "primary"}
    assert alarms["ModelLatency"]["extendedStatistic"] == "p99"
    assert alarms["ModelLatency"]["threshold"] == deployed.config.monitoring.latencyP99Ms * 1000
    drift = alarms["DriftScore"]
    assert (drift["namespace"], drift["dimensions"]) == ("MLOps/Drift", {"EndpointName": endpoint})
    assert drift["threshold"] == deployed.config.monitoring.driftThreshold
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [deployed.outputs["alertTopicArn"]]


def test_endpoint_config_is_replaced_whenever_its_content_changes(preview_of):
    """A changed package gives a new config (its content digest changes, and every config input forces a
    replacement under a fresh generated name), so the endpoint always rolls to it. Was: the name itself
    was the digest, which collides with a retained config when rolling back to earlier content."""
    first = custom(preview_of("staging", True), "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]
    from infra.preview import preview_stack

    other = preview_stack("staging", {"mlops:approvedPackages": {"churn": APPROVED.replace("/7", "/8")}})
    second = custom(other, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]
    assert first["props"]["tags"]["content-digest"] != second["props"]["tags"]["content-digest"]
    assert first["props"]["productionVariants"] != second["props"]["productionVariants"]
    assert first["props"]["namePrefix"] == "mlops-staging-churn-" and "name" not in first["props"]
    (endpoint,) = custom(preview_of("staging", True), "aws:sagemaker/endpoint:Endpoint")
    assert endpoint["props"]["endpointConfigName"] == first["id"]


def test_prod_rolls_out_by_canary_with_alarm_rollback(preview_of):
    prod = preview_of("prod", True)
    (endpoint,) = custom(prod, "aws:sagemaker/endpoint:Endpoint")
    deployment = endpoint["props"]["deploymentConfig"]
    routing = deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY" and routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 10}
    assert routing["waitIntervalInSeconds"] == 600
    rollback = [a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]]
    assert rollback == ["mlops-prod-churn-5xx-errors", "mlops-prod-churn-latency-p99"]
    alarm_urns = {
        a["urn"] for a in custom(prod, "aws:cloudwatch/metricAlarm:MetricAlarm") if a["props"]["name"] in rollback
    }
    assert alarm_urns <= set(endpoint["dependencies"])  # the alarms exist before the deployment that watches them


def test_instance_endpoints_capture_with_kms_and_autoscale(preview_of):
    for stack in ("staging", "prod"):
        preview = preview_of(stack, True)
        (config,) = custom(preview, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
        capture = config["props"]["dataCaptureConfig"]
        assert capture["enableCapture"] is True
        assert capture["kmsKeyId"] == preview.outputs["kmsKeyArn"]
        assert capture["destinationS3Uri"] == f"s3://{preview.outputs['captureBucket']}/churn"
        assert config["props"]["kmsKeyArn"] == preview.outputs["kmsKeyArn"]
        (target,) = custom(preview, "aws:appautoscaling/target:Target")
        assert target["props"]["resourceId"] == f"endpoint/mlops-{stack}-churn/variant/primary"
        assert target["props"]["minCapacity"] == preview.config.serving.autoscaling.minCapacity
        (policy,) = custom(preview, "aws:appautoscaling/policy:Policy")
        spec = policy["props"]["targetTrackingScalingPolicyConfiguration"]
        assert spec["predefinedMetricSpecification"]["predefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


def test_dev_endpoint_is_serverless_and_never_bills_idle(preview_of):
    dev = preview_of("dev", True)
    (config,) = custom(dev, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = config["props"]["productionVariants"]
    assert "serverlessConfig" in variant and "instanceType" not in variant
    assert custom(dev, "aws:appautoscaling/target:Target") == []


def test_vpc_config_reaches_the_model(preview_of):
    from infra.preview import preview_stack

    vpc = {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}
    # Bring your own VPC: staging's own network (on as shipped) is turned off for it.
    byo = {"mlops:vpc": vpc, "mlops:network": {"enabled": False}, "mlops:approvedPackages": {"churn": APPROVED}}
    preview = preview_stack("staging", byo)
    (model,) = custom(preview, "aws:sagemaker/model:Model")
    assert model["props"]["vpcConfig"] == {"subnets": vpc["subnetIds"], "securityGroupIds": vpc["securityGroupIds"]}
    assert preview.outputs["trainingDefaults"]["vpc"] == vpc


def test_deployer_launches_only_allowed_gpu_types(shipped):
    policy = next(
        r for r in custom(shipped, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "identity-deployer-pipeline"
    )
    (run,) = [s for s in statements(policy["props"]["policy"]) if s["Sid"] == "RunTrainingJobs"]
    allowed = run["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
    assert allowed == list(shipped.config.training.allowedInstanceTypes)


def test_deployer_pushes_only_to_its_own_repository(shipped):
    policy = next(
        r for r in custom(shipped, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "identity-deployer-pipeline"
    )
    (push,) = [s for s in statements(policy["props"]["policy"]) if s["Sid"] == "PushServingImage"]
    assert push["Resource"] == f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/mlops-{shipped.stack}"


def test_key_lets_logs_encrypt_only_this_accounts_log_groups(shipped):
    key = custom(shipped, "aws:kms/key:Key")[0]["props"]
    (logs,) = [s for s in statements(key["policy"]) if s["Sid"] == "LogsEncryptThisAccountsLogGroups"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert (
        logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        == f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:*"
    )
    (publishers,) = [s for s in statements(key["policy"]) if s["Sid"] == "AlertPublishersUseTheKey"]
    assert set(publishers["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}  # enough to publish, no more
