"""Four duties, four roles per environment, none able to do another's job (docs/security.md).

Each role's policy and boundary come from the offline previews; each request is one AWS would
evaluate (kernel.iam_eval). Trust policies are evaluated the same way, with the OIDC token's
`aud` and customized `sub` as the request context.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from permissions_testkit import (
    ENVIRONMENTS,
    REGION,
    Role,
    approver_role,
    boundary,
    deploy_role,
    monitor_role,
    pipeline_role,
    policy_of,
    stack_preview,
)

from infra.environment import Environment
from infra.identity import IdentityArgs, sagemaker_guardrails
from infra.preview import ACCOUNT_ID, preview_stack
from infra.training import MODEL_PACKAGE_WRITES
from kernel.iam_eval import ALLOW, DENY, Request, decide
from kernel.permissions import action_entries
from kernel.stack_config import GithubConfig

REPO = "example-org/mlops-blueprint"
CTX = {"aws:RequestedRegion": REGION}


def sm(kind: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:{kind}"


def package(stack: str) -> str:
    return sm(f"model-package/churn-{stack}/1")


def status(action: str, stack: str, value: str | None) -> Request:
    context = {**CTX, **({"sagemaker:ModelApprovalStatus": value} if value else {})}
    # CreateModelPackage is authorised on the group it registers into (kernel.permissions.resources_of)
    return Request(
        f"sagemaker:{action}",
        package(stack) if action != "CreateModelPackage" else sm(f"model-package-group/churn-{stack}"),
        context,
    )


# --- pipeline: registers, never approves --------------------------------------------------------


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_pipeline_role_cannot_approve(stack):
    """Self-approval: UpdateModelPackage is denied outright, and where models are trained a package
    cannot be registered Approved either (CreateModelPackage carries the status too). Downstream,
    the only packages born are promotion's copies of an upstream-Approved package, registered
    Approved; Pending is refused there. AWS rule: SM-APPROVAL-STATUS."""
    role = pipeline_role(stack)
    for value in ("Approved", "Rejected", None):
        assert role.decide(status("UpdateModelPackage", stack, value)) == DENY
    born, refused = ("Approved", "PendingManualApproval") if stack in ("staging", "prod") else ("", "Approved")
    assert role.decide(status("CreateModelPackage", stack, refused)) == DENY
    assert role.decide(status("CreateModelPackage", stack, None)) == DENY  # the status must be stated
    if born:
        assert role.decide(status("CreateModelPackage", stack, born)) == ALLOW


def test_the_pipeline_role_registers_pending_packages():
    assert pipeline_role("dev").decide(status("CreateModelPackage", "dev", "PendingManualApproval")) == ALLOW


# --- approver: approval status, nothing else -------------------------------------------------------


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_approver_sets_approval_status_of_its_environments_packages_only(stack):
    """AWS rule: SM-APPROVAL-STATUS (every update it may make names Approved or Rejected)."""
    role = approver_role(stack)
    assert role.decide(status("UpdateModelPackage", stack, "Approved")) == ALLOW
    assert role.decide(status("UpdateModelPackage", stack, "Rejected")) == ALLOW
    assert role.decide(Request("sagemaker:DescribeModelPackage", package(stack), CTX)) == ALLOW
    assert role.decide(status("UpdateModelPackage", stack, None)) != ALLOW  # metadata-only edits
    assert role.decide(status("UpdateModelPackage", stack, "PendingManualApproval")) != ALLOW
    other = next(e for e in ENVIRONMENTS if e != stack)
    assert role.decide(status("UpdateModelPackage", other, "Approved")) != ALLOW


CANNOT = [
    ("sagemaker:CreateModelPackage", "model-package-group/churn-{s}"),
    ("sagemaker:CreateEndpoint", "endpoint/mlops-{s}-churn"),
    ("sagemaker:UpdateEndpoint", "endpoint/mlops-{s}-churn"),
    ("sagemaker:CreateModel", "model/mlops-{s}-churn-1"),
    ("sagemaker:CreateTrainingJob", "training-job/mlops-{s}-churn-1"),
]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
@pytest.mark.parametrize(("action", "kind"), CANNOT)
def test_the_approver_cannot_register_train_or_deploy(stack, action, kind):
    assert approver_role(stack).decide(Request(action, sm(kind.format(s=stack)), CTX)) != ALLOW


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_approver_touches_no_data_and_passes_no_role(stack):
    role = approver_role(stack)
    assert role.decide(Request("s3:PutObject", f"arn:aws:s3:::mlops-{stack}-artifacts-{ACCOUNT_ID}/x", CTX)) != ALLOW
    execution = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-{stack}-sagemaker-execution"
    passed = {**CTX, "iam:PassedToService": "sagemaker.amazonaws.com"}
    assert role.decide(Request("iam:PassRole", execution, passed)) != ALLOW


# --- monitor: captures, baselines, drift, alerts -----------------------------------------------


@pytest.mark.parametrize("stack", ENVIRONMENTS)
@pytest.mark.parametrize(("action", "kind"), [*CANNOT, ("sagemaker:UpdateModelPackage", "model-package/churn-{s}/1")])
def test_the_monitor_cannot_deploy_register_train_or_approve(stack, action, kind):
    context = {**CTX, "sagemaker:ModelApprovalStatus": "Approved"} if "ModelPackage" in action else CTX
    assert monitor_role(stack).decide(Request(action, sm(kind.format(s=stack)), context)) != ALLOW


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_monitor_publishes_drift_and_alerts_only(stack):
    role = monitor_role(stack)
    topic = stack_preview(stack).outputs["alertTopicArn"]
    assert role.decide(Request("sns:Publish", topic, CTX)) == ALLOW
    assert (
        role.decide(Request("cloudwatch:PutMetricData", "*", {**CTX, "cloudwatch:namespace": "MLOps/Drift"})) == ALLOW
    )
    assert (
        role.decide(Request("cloudwatch:PutMetricData", "*", {**CTX, "cloudwatch:namespace": "AWS/SageMaker"})) != ALLOW
    )
    data = f"arn:aws:s3:::mlops-{stack}-data-{ACCOUNT_ID}/datasets/x.csv"
    assert role.decide(Request("s3:GetObject", data, CTX)) != ALLOW  # training data is not the monitor's


# --- guardrails on SageMaker requests ----------------------------------------------------------


def job(stack: str, **context) -> Request:
    """A CreateTrainingJob request context as SageMaker builds it (kernel.permissions.CONTEXT_FROM_PARAMS)."""
    base = {
        **CTX,
        "sagemaker:InstanceTypes": ["ml.g5.xlarge"],
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:OutputKmsKey": stack_preview(stack).outputs["kmsKeyArn"],
    }
    return Request("sagemaker:CreateTrainingJob", sm(f"training-job/mlops-{stack}-churn-1"), {**base, **context})


def test_a_compliant_training_job_is_allowed():
    """AWS rule: SM-GUARDRAIL-KEYS; AWS rule: INSTANCE-STORAGE (ml.g5 has local NVMe storage: no volume key sent)."""
    assert pipeline_role("dev").decide(job("dev")) == ALLOW


@pytest.mark.parametrize(
    ("why", "context"),
    [
        ("isolation off", {"sagemaker:NetworkIsolation": "false"}),
        ("isolation not sent", {"sagemaker:NetworkIsolation": None}),
        ("another environment's output key", {"sagemaker:OutputKmsKey": "arn:aws:kms:us-east-1:123456789012:key/prod"}),
        ("no output key", {"sagemaker:OutputKmsKey": None}),
        ("another volume key", {"sagemaker:VolumeKmsKey": "arn:aws:kms:us-east-1:123456789012:key/other"}),
        ("a type dev does not allow", {"sagemaker:InstanceTypes": ["ml.p5.48xlarge"]}),
        ("an allowed and a disallowed type", {"sagemaker:InstanceTypes": ["ml.g5.xlarge", "ml.p4d.24xlarge"]}),
        ("no instance type", {"sagemaker:InstanceTypes": None}),
    ],
)
def test_a_training_job_outside_the_guardrails_is_denied(why, context):
    """AWS rule: SM-GUARDRAIL-KEYS (a Deny, whatever else allows it)."""
    request = job("dev")
    merged = {k: v for k, v in {**request.context, **context}.items() if v is not None}
    assert pipeline_role("dev").decide(Request(request.action, request.resource, merged)) == DENY, why


def test_tuning_jobs_pass_the_same_guardrails():
    tuning = sm("hyper-parameter-tuning-job/mlops-dev-churn-1")
    ok = Request("sagemaker:CreateHyperParameterTuningJob", tuning, job("dev").context)
    assert pipeline_role("dev").decide(ok) == ALLOW
    open_ = Request(ok.action, tuning, {**ok.context, "sagemaker:NetworkIsolation": "false"})
    assert pipeline_role("dev").decide(open_) == DENY


def guardrails(**kwargs) -> list[dict]:
    args = dict(
        env=Environment("staging", ACCOUNT_ID, REGION, kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/staging"),
        github=GithubConfig(REPO, "staging"),
        execution_role_arn="role",
        bucket_arns=[],
        topic_arn="topic",
        repository_arn="repo",
        training_instance_types=("ml.g5.xlarge", "ml.p3.2xlarge"),
    )
    return [{"Statement": sagemaker_guardrails(IdentityArgs(**{**args, **kwargs}))}]


def test_a_type_with_an_ebs_volume_must_send_the_environment_volume_key():
    """AWS rule: INSTANCE-STORAGE. ml.p3 has an EBS volume: no volume key there is refused (AWS's
    default key otherwise); ml.g5 has local NVMe storage and sends none (a key would be refused)."""
    policy = guardrails()
    key = "arn:aws:kms:us-east-1:123456789012:key/staging"
    base = {"sagemaker:NetworkIsolation": "true", "sagemaker:OutputKmsKey": key}

    def verdict(types, **extra):
        return decide(
            Request("sagemaker:CreateTrainingJob", "*", {**base, "sagemaker:InstanceTypes": types, **extra}), policy
        )

    assert verdict(["ml.g5.xlarge"]) != DENY
    assert verdict(["ml.p3.2xlarge"]) == DENY
    assert verdict(["ml.p3.2xlarge"], **{"sagemaker:VolumeKmsKey": key}) != DENY


@cache
def vpc_preview(stack: str):
    """A stack with its VPC (the network component's subnets and security groups, or mlops:vpc)."""
    return preview_stack(
        stack,
        {
            "mlops:vpc": {"subnetIds": ["subnet-0a1b2c3d"], "securityGroupIds": ["sg-0a1b2c3d"]},
            "mlops:network": {"enabled": False},  # a brought VPC instead of the stack's own network
        },
    )


def vpc_role(stack: str) -> Role:
    return Role(f"{stack} pipeline", [policy_of(vpc_preview(stack), "identity-deployer-pipeline")], [boundary()])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_train_and_serve_only_in_their_subnets(stack):
    """AWS rule: SM-GUARDRAIL-KEYS (sagemaker:VpcSubnets, sagemaker:VpcSecurityGroupIds)."""
    role = vpc_role(stack)
    key = vpc_preview(stack).outputs["kmsKeyArn"]
    inside = {
        **CTX,
        "sagemaker:InstanceTypes": ["ml.g5.12xlarge"],  # allowed in both, local NVMe storage
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:OutputKmsKey": key,
        "sagemaker:VpcSubnets": ["subnet-0a1b2c3d"],
        "sagemaker:VpcSecurityGroupIds": ["sg-0a1b2c3d"],
    }
    resource = sm(f"training-job/mlops-{stack}-churn-1")
    assert role.decide(Request("sagemaker:CreateTrainingJob", resource, inside)) == ALLOW
    for change in (
        {"sagemaker:VpcSubnets": ["subnet-0a1b2c3d", "subnet-0fffffff"]},
        {"sagemaker:VpcSecurityGroupIds": ["sg-0fffffff"]},
        {"sagemaker:VpcSubnets": None, "sagemaker:VpcSecurityGroupIds": None},
    ):
        outside = {k: v for k, v in {**inside, **change}.items() if v is not None}
        assert role.decide(Request("sagemaker:CreateTrainingJob", resource, outside)) == DENY, change
    # models too (instance endpoints): isolation and the VPC are denied away even were they granted
    model = {k: v for k, v in inside.items() if k.startswith("sagemaker:Vpc") or k.endswith("NetworkIsolation")}
    statements = [s for p in role.identity for s in p["Statement"] if s["Effect"] == "Deny"]
    assert (
        decide(
            Request("sagemaker:CreateModel", "*", {**model, "sagemaker:NetworkIsolation": "false"}),
            [{"Statement": statements}],
        )
        == DENY
    )
    assert (
        decide(
            Request("sagemaker:CreateModel", "*", {**model, "sagemaker:VpcSubnets": ["subnet-0fffffff"]}),
            [{"Statement": statements}],
        )
        == DENY
    )
    assert decide(Request("sagemaker:CreateModel", "*", model), [{"Statement": statements}]) != DENY


def test_serverless_models_are_not_held_to_isolation():
    """AWS rule: SERVERLESS-EXCLUSIONS (a serverless endpoint's model takes no isolation and no VPC)."""
    actions = {a for s in guardrails(serving_mode="serverless")[0]["Statement"] for a in s["Action"]}
    assert "sagemaker:CreateModel" not in actions
    assert "sagemaker:CreateModel" in {a for s in guardrails()[0]["Statement"] for a in s["Action"]}


def test_the_execution_role_cannot_change_model_packages():
    """A compromised training container holds the execution role: every model package write is
    explicitly denied to it, whatever the boundary or a later grant allows."""
    for stack in ENVIRONMENTS:
        execution = Role("execution", [policy_of(stack_preview(stack), "training-execution-permissions")], [boundary()])
        for action in MODEL_PACKAGE_WRITES:
            request = Request(
                action, sm(f"model-package/churn-{stack}/1"), {**CTX, "sagemaker:ModelApprovalStatus": "Approved"}
            )
            assert execution.decide(request) == DENY, action
            action_entries(action)  # each is a real action in the Service Authorization Reference


def test_the_deploy_role_cannot_approve():
    """The deploy role runs pulumi up; approving is the approver's (its rewriting itself: test_deploy_role.py)."""
    assert deploy_role().decide(status("UpdateModelPackage", "prod", "Approved")) != ALLOW


# --- who may assume which role (OIDC trust) -----------------------------------------------------


def trust_of(stack: str, resource: str) -> list[dict]:
    (record,) = [r for r in stack_preview(stack).resources if r["name"] == resource]
    return [json.loads(record["props"]["assumeRolePolicy"])]


def subject(environment: str, workflow: str, ref: str, repo: str = REPO) -> str:
    return f"repo:{repo}:environment:{environment}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}"


def may_assume(stack: str, resource: str, sub: str) -> bool:
    context = {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": sub,
    }
    return decide(Request("sts:AssumeRoleWithWebIdentity", "*", context), trust_of(stack, resource)) == ALLOW


MAIN, FEATURE, PR = "refs/heads/main", "refs/heads/feature", "refs/pull/7/merge"


@pytest.mark.parametrize(
    ("stack", "role", "sub", "allowed"),
    [
        # the approver: approve.yml from main in <env>-approval, nothing else
        ("dev", "identity-approver", subject("dev-approval", "approve.yml", MAIN), True),
        ("dev", "identity-approver", subject("dev-approval", "approve.yml", FEATURE), False),
        ("dev", "identity-approver", subject("dev", "approve.yml", MAIN), False),  # not its environment
        ("dev", "identity-approver", subject("dev-approval", "train.yml", MAIN), False),
        ("dev", "identity-deployer", subject("dev-approval", "approve.yml", MAIN), False),  # no self-approval path
        # staging and prod: the workflow file and the default branch
        ("prod", "identity-deployer", subject("prod", "promote.yml", MAIN), True),
        ("prod", "identity-deployer", subject("prod", "promote.yml", FEATURE), False),
        ("prod", "identity-deployer", subject("prod", "train.yml", MAIN), False),
        ("prod", "identity-deployer", subject("prod", "drift.yml", MAIN), False),
        ("staging", "identity-deployer", subject("dev", "promote.yml", MAIN), False),
        ("prod", "identity-monitor", subject("prod", "drift.yml", MAIN), True),
        ("prod", "identity-monitor", subject("prod", "drift.yml", FEATURE), False),
        ("prod", "identity-monitor", subject("prod", "promote.yml", MAIN), False),
        # dev: its workflows from any branch (its deployment branch rules decide), never a pull request's
        ("dev", "identity-deployer", subject("dev", "train.yml", FEATURE), True),
        ("dev", "identity-deployer", subject("dev", "train.yml", PR), False),
        ("dev", "identity-deployer", subject("dev", "drift.yml", MAIN), False),
        ("dev", "identity-deployer", subject("dev", "train.yml", MAIN, repo="fork-owner/mlops-blueprint"), False),
    ],
)
def test_each_role_trusts_its_workflow_environment_and_branch(stack, role, sub, allowed):
    """AWS rule: IAM-OIDC-TRUST; AWS rule: GITHUB-OIDC-SUBJECT."""
    assert may_assume(stack, role, sub) is allowed


@pytest.mark.parametrize("stack", ENVIRONMENTS)
@pytest.mark.parametrize("role", ["identity-deployer", "identity-approver", "identity-monitor"])
def test_pull_requests_assume_nothing(stack, role):
    """A pull request's job has context `pull_request` (no environment) or, in an environment, the
    merge ref: neither matches. A fork's pull request gets no OIDC token at all (id-token is
    read-only for forks); were it to, its subject names the fork. AWS rule: GITHUB-OIDC-SUBJECT."""
    for workflow in ("train.yml", "promote.yml", "approve.yml", "drift.yml"):
        pr = f"repo:{REPO}:pull_request:job_workflow_ref:{REPO}/.github/workflows/{workflow}@{PR}"
        assert not may_assume(stack, role, pr)
        for environment in (stack, f"{stack}-approval"):  # a same-repository pull request's job in an environment
            assert not may_assume(stack, role, subject(environment, workflow, PR))


# --- the workflows use the roles that trust them ------------------------------------------------


def test_each_workflow_assumes_only_a_role_that_trusts_it():
    """A workflow whose role variable names a role that does not trust its file would fail at run
    time (AssumeRoleWithWebIdentity denied): hold .github/workflows and the trust lists together."""
    from pathlib import Path

    import yaml

    from infra.bootstrap.contract import DEPLOY_WORKFLOWS
    from infra.identity import APPROVAL_WORKFLOW, DRIFT_WORKFLOW, approval_environment, pipeline_workflows

    trusted = {
        "AWS_DEPLOYER_ROLE_ARN": set(pipeline_workflows("dev")) | set(pipeline_workflows("prod")),
        "AWS_APPROVER_ROLE_ARN": {APPROVAL_WORKFLOW},
        "AWS_MONITOR_ROLE_ARN": {DRIFT_WORKFLOW},
        "AWS_DEPLOY_ROLE_ARN": set(DEPLOY_WORKFLOWS),
    }
    seen = set()
    for path in sorted((Path(__file__).resolve().parents[2] / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if "configure-aws-credentials" not in step.get("uses", ""):
                    continue
                variable = step["with"]["role-to-assume"].split("vars.", 1)[1].split()[0].rstrip("}")
                assert path.name in trusted[variable], f"{path.name} assumes {variable}, which does not trust it"
                if variable == "AWS_APPROVER_ROLE_ARN":
                    assert job["environment"] == approval_environment("dev")
                seen.add(variable)
    assert seen == set(trusted)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_with_the_stacks_own_network_jobs_are_pinned_to_its_subnets(stack):
    """AWS rule: SM-GUARDRAIL-KEYS. The shipped staging and prod run in infra/network.py's subnets."""
    preview = preview_stack(stack)
    vpc = preview.outputs["trainingDefaults"]["vpc"]
    assert vpc["subnetIds"] and vpc["securityGroupIds"]
    role = Role(f"{stack} pipeline", [policy_of(preview, "identity-deployer-pipeline")], [boundary()])
    key = preview.outputs["kmsKeyArn"]
    inside = {
        **CTX,
        "sagemaker:InstanceTypes": ["ml.g5.12xlarge"],
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:OutputKmsKey": key,
        "sagemaker:VpcSubnets": list(vpc["subnetIds"]),
        "sagemaker:VpcSecurityGroupIds": list(vpc["securityGroupIds"]),
    }
    resource = sm(f"training-job/mlops-{stack}-churn-1")
    assert role.decide(Request("sagemaker:CreateTrainingJob", resource, inside)) == ALLOW
    elsewhere = {**inside, "sagemaker:VpcSubnets": ["subnet-0fffffff"]}
    assert role.decide(Request("sagemaker:CreateTrainingJob", resource, elsewhere)) == DENY
