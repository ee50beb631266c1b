"""Identity: the three roles GitHub Actions assumes (OIDC, no stored keys) for one environment.

Four duties, none able to do another's job (DESIGN.md section 8; docs/security.md):
- pipeline (`mlops-<env>-github-deployer`, output `deployerRoleArn`, alias `pipelineRoleArn`):
  trains, tunes, registers (always PendingManualApproval), promotes, publishes metrics. It may
  not change a package's approval status: UpdateModelPackage is denied outright (the pipeline
  never calls it; ci/aws/registry.py `set_status` is the approver's).
- approver (`mlops-<env>-approver`, output `approverRoleArn`): reads packages and sets their
  approval status, nothing else; trusted only from approve.yml in the `<env>-approval` GitHub
  environment.
- monitor (`mlops-<env>-monitor`, output `monitorRoleArn`): reads captures and baselines,
  publishes the drift metric, notifies the alert topic; trusted only from drift.yml.
- deploy (`pulumi up`) is the bootstrap program's (infra/bootstrap/), outside every stack.

Each role trusts named workflow files of one GitHub environment, through the repository's
customized OIDC subject (infra/bootstrap/contract.github_trust); in staging and prod, and for
every approver, only from the default branch. Every role carries the bootstrap's permissions
boundary. The pipeline role's SageMaker requests pass guardrails (`sagemaker_guardrails`):
network isolation, this environment's KMS key, its instance types and, with a VPC, its subnets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.bootstrap.contract import (
    boundary_arn,
    github_trust,
    oidc_provider_arn,
    pinned_ref,
)
from infra.common import (
    READ_OBJECTS,
    Component,
    Statement,
    bucket_and_objects,
    pass_role,
    physical_name,
    policy_document,
    upstream_objects,
)
from infra.environment import Environment
from infra.training import DLC_ACCOUNT
from kernel.instances import accepts_volume_kms_key
from kernel.stack_config import GithubConfig

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # SageMaker's, one per account and region
PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"  # ModelApprovalStatus values
PROMOTION_TARGET_TIERS = ("staging", "prod")  # tiers that receive promoted copies and train nothing
TRAINING_TIERS = ("dev", "local")  # where the pipeline trains and registers (staging and prod only promote)
APPROVAL_WORKFLOW, DRIFT_WORKFLOW = "approve.yml", "drift.yml"


def pipeline_workflows(tier: str) -> tuple[str, ...]:
    """The workflow files whose jobs may assume a tier's pipeline role."""
    return ("train.yml", "promote.yml") if tier in TRAINING_TIERS else ("promote.yml",)


def approval_environment(github_environment: str) -> str:
    """The protected GitHub environment the approval workflow runs in (its own required reviewers)."""
    return f"{github_environment}-approval"


@dataclass(frozen=True)
class IdentityArgs:
    env: Environment
    github: GithubConfig  # the repository whose workflows assume the roles, their environment and branch
    execution_role_arn: pulumi.Input[str]
    bucket_arns: list[pulumi.Input[str]]
    topic_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    training_instance_types: tuple[str, ...]
    artifact_bucket_arn: pulumi.Input[str] = ""
    capture_bucket_arn: pulumi.Input[str] = ""
    # Where training and models run: the VPC's subnets and security groups (empty: no VPC condition).
    vpc_subnet_ids: tuple[pulumi.Input[str], ...] = field(default_factory=tuple)
    vpc_security_group_ids: tuple[pulumi.Input[str], ...] = field(default_factory=tuple)
    serving_mode: str = "instance"  # serverless models cannot take network isolation


class Identity(Component):
    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:identity:Identity", name, opts)
        provider = oidc_provider_arn(args.env.account_id)
        ref = pinned_ref(args.env.tier, args.github.defaultBranch)

        def role(
            suffix: str, role_name: str, description: str, trust: list[Statement], statements: list[Statement]
        ) -> tuple[aws.iam.Role, list[Statement]]:
            made = aws.iam.Role(
                f"{name}-{suffix}",
                name=physical_name(args.env.stack, role_name),
                description=description,
                assume_role_policy=policy_document(trust),
                permissions_boundary=boundary_arn(args.env.account_id),
                max_session_duration=3600,
                opts=self.child,
            )
            return made, statements

        self.role, pipeline = role(
            "deployer",
            "github-deployer",
            f"GitHub Actions runs the mlops {args.env.stack} pipeline from {args.github.repository} "
            f"(environment {args.github.environment}); it cannot approve, pulumi up runs as the deploy role",
            github_trust(
                provider, args.github.repository, args.github.environment, pipeline_workflows(args.env.tier), ref
            ),
            [*self._pipeline_statements(args), *sagemaker_guardrails(args), *self._no_approval_statements(args)],
        )
        aws.iam.RolePolicy(
            f"{name}-deployer-pipeline", role=self.role.id, policy=policy_document(pipeline), opts=self.child
        )
        # The approver always trusts the default branch only, dev included: approving is never a branch's job.
        approval_ref = pinned_ref("prod", args.github.defaultBranch)
        self.approver, approver = role(
            "approver",
            "approver",
            f"Sets the approval status of mlops {args.env.stack} model packages, from {APPROVAL_WORKFLOW} "
            f"in GitHub environment {approval_environment(args.github.environment)}",
            github_trust(
                provider,
                args.github.repository,
                approval_environment(args.github.environment),
                (APPROVAL_WORKFLOW,),
                approval_ref,
            ),
            self._approver_statements(args),
        )
        aws.iam.RolePolicy(
            f"{name}-approver-permissions", role=self.approver.id, policy=policy_document(approver), opts=self.child
        )
        self.monitor, monitor = role(
            "monitor",
            "monitor",
            f"Drift of mlops {args.env.stack}: reads captures and baselines, publishes the drift metric, "
            f"notifies the alert topic; from {DRIFT_WORKFLOW} in GitHub environment {args.github.environment}",
            github_trust(provider, args.github.repository, args.github.environment, (DRIFT_WORKFLOW,), ref),
            self._monitor_statements(args),
        )
        aws.iam.RolePolicy(
            f"{name}-monitor-permissions", role=self.monitor.id, policy=policy_document(monitor), opts=self.child
        )
        self.register_outputs(
            {
                "deployerRoleArn": self.role.arn,
                "approverRoleArn": self.approver.arn,
                "monitorRoleArn": self.monitor.arn,
            }
        )

    @staticmethod
    def _sm(args: IdentityArgs) -> Callable[[str], pulumi.Output[str]]:
        return lambda kind: pulumi.Output.concat(
            "arn:aws:sagemaker:", args.env.region, ":", args.env.account_id, ":", kind
        )

    @staticmethod
    def _no_approval_statements(args: IdentityArgs) -> list[Statement]:
        """The pipeline never changes an approval status, and registers only what its tier registers.

        CreateModelPackage carries `sagemaker:ModelApprovalStatus` too (Service Authorization
        Reference), so the status a package is born with is pinned per tier. AWS rule SM-APPROVAL-STATUS.
        - Where models are trained (dev, local): PendingManualApproval only; the approver decides.
        - Downstream (staging, prod): nothing is trained; the only packages born there are promotion's
          copies of a package the upstream approver Approved (ci/steps/promotion_copy.py, after the gates
          and the digest check), registered Approved. Pending is refused there.
        """
        born = PENDING if args.env.tier not in PROMOTION_TARGET_TIERS else APPROVED
        return [
            {"Sid": "NeverApprove", "Effect": "Deny", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"},
            {
                "Sid": "RegisterOnly" + born.replace("ManualApproval", ""),
                "Effect": "Deny",
                "Action": "sagemaker:CreateModelPackage",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"sagemaker:ModelApprovalStatus": born}},
            },
        ]

    @staticmethod
    def _approver_statements(args: IdentityArgs) -> list[Statement]:
        """Read this environment's packages and set their approval status; nothing else."""
        sm = Identity._sm(args)
        packages = [sm(f"model-package/*-{args.env.stack}/*"), sm(f"model-package-group/*-{args.env.stack}")]
        return [
            {
                "Sid": "ReadPackages",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ],
                "Resource": packages,
            },
            {"Sid": "ListPackages", "Effect": "Allow", "Action": "sagemaker:ListModelPackages", "Resource": "*"},
            {
                # Every update it may make is an approval decision: the status is required and is one of these.
                "Sid": "DecideApproval",
                "Effect": "Allow",
                "Action": "sagemaker:UpdateModelPackage",
                "Resource": sm(f"model-package/*-{args.env.stack}/*"),
                "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": [APPROVED, REJECTED]}},
            },
        ]

    @staticmethod
    def _monitor_statements(args: IdentityArgs) -> list[Statement]:
        """What `mlops monitor --no-retrain` calls (recorded in tests/permissions): captures, baselines,
        the drift metric, the alert topic. Retraining is a GitHub workflow (train.yml, pipeline role)."""
        sm = Identity._sm(args)
        own = (args.env.stack, *args.env.upstream)
        statements: list[Statement] = [
            {
                # The deployed package names its drift baseline (promoted packages live upstream).
                "Sid": "ReadDeployedPackages",
                "Effect": "Allow",
                "Action": "sagemaker:DescribeModelPackage",
                "Resource": [sm(f"model-package/*-{env}/*") for env in own],
            },
            {
                "Sid": "ReadCaptures",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": bucket_and_objects(args.capture_bucket_arn),
            },
            {
                # The drift baseline beside this environment's training output, or beside a promoted copy.
                "Sid": "ReadBaselines",
                "Effect": "Allow",
                "Action": list(READ_OBJECTS),
                "Resource": [
                    pulumi.Output.concat(args.artifact_bucket_arn, "/training-output/*"),
                    # a promoted package's baseline sits in this environment's write-once prefix
                    pulumi.Output.concat(args.artifact_bucket_arn, "/promoted/*"),
                ],
            },
            {
                "Sid": "WriteDriftReports",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(args.artifact_bucket_arn, "/monitoring/*"),
            },
            {
                "Sid": "EnvironmentKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": args.env.kms_key_arn,
            },
            {
                "Sid": "PublishDrift",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/Drift"}},
            },
            {"Sid": "Alert", "Effect": "Allow", "Action": "sns:Publish", "Resource": args.topic_arn},
        ]
        upstream = Identity._upstream_statements(args, sm)
        keep = {"ReadUpstreamModelData", "DecryptUpstreamModelData"}  # baselines trained upstream
        return statements + [s for s in upstream if s["Sid"] in keep]

    @staticmethod
    def _upstream_statements(args: IdentityArgs, sm: Callable[[str], pulumi.Output[str]]) -> list[Statement]:
        """What a promoted package needs where it was trained: its record, model data and drift baseline."""
        if not args.env.upstream:
            return []
        account, region = args.env.account_id, args.env.region
        return [
            {
                "Sid": "ReadUpstreamPackages",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                "Resource": [
                    arn
                    for up in args.env.upstream
                    for arn in (sm(f"model-package/*-{up}/*"), sm(f"model-package-group/*-{up}"))
                ],
            },
            {
                # Promotion's "live in" gate reads what the upstream endpoint really serves (mlops verify).
                "Sid": "ReadUpstreamEndpoints",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                ],
                "Resource": [
                    sm(f"{kind}/{physical_name(up)}-*")
                    for up in args.env.upstream
                    for kind in ("endpoint", "endpoint-config", "model")
                ],
            },
            {
                # The model data and drift baseline stay beside the training output upstream.
                "Sid": "ReadUpstreamModelData",
                "Effect": "Allow",
                "Action": list(READ_OBJECTS),
                "Resource": upstream_objects(args.env.upstream, account, "/training-output/*"),
            },
            {
                # ...encrypted with that environment's key, matched by its alias (the key id is not known here).
                "Sid": "DecryptUpstreamModelData",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": pulumi.Output.concat("arn:aws:kms:", region, ":", account, ":key/*"),
                "Condition": {
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": [f"alias/{physical_name(up)}" for up in args.env.upstream]
                    }
                },
            },
        ]

    @staticmethod
    def _pipeline_statements(args: IdentityArgs) -> list[Statement]:
        account, region, stack = args.env.account_id, args.env.region, args.env.stack
        sm = Identity._sm(args)
        objects = [pulumi.Output.concat(arn, "/*") for arn in args.bucket_arns]
        return [
            {
                "Sid": "RunTrainingJobs",
                "Effect": "Allow",
                "Action": ["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"],
                "Resource": [
                    sm(f"training-job/{physical_name(stack)}-*"),
                    sm(f"hyper-parameter-tuning-job/{physical_name(stack)}-*"),
                ],
                # CI may launch only the GPU types this environment allows. Both actions carry this
                # key; on any other action ForAllValues would be vacuously true. See sagemaker_guardrails.
                "Condition": {
                    "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(args.training_instance_types)}
                },
            },
            {
                "Sid": "FollowTrainingJobs",
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"],
                "Resource": sm(f"training-job/{physical_name(stack)}-*"),
            },
            {
                # Registering, not approving: UpdateModelPackage is the approver's (see NeverApprove).
                "Sid": "ManageModelPackages",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                "Resource": [sm(f"model-package/*-{stack}/*"), sm(f"model-package-group/*-{stack}")],
            },
            # ListModelPackages names no resource the reference's ARN formats can be filled from
            # (it takes a group name, not a package's): only a grant on `*` covers it. Read-only.
            {"Sid": "ListPackages", "Effect": "Allow", "Action": "sagemaker:ListModelPackages", "Resource": "*"},
            *Identity._upstream_statements(args, sm),
            {
                # Following a job: its CloudWatch Logs lines (SageMaker writes one account-wide group).
                "Sid": "FollowTrainingLogs",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
                "Resource": [
                    pulumi.Output.concat("arn:aws:logs:", region, ":", account, ":log-group:", TRAINING_LOG_GROUP),
                    pulumi.Output.concat(
                        "arn:aws:logs:",
                        region,
                        ":",
                        account,
                        ":log-group:",
                        TRAINING_LOG_GROUP,
                        ":log-stream:",
                        physical_name(stack),
                        "-*",
                    ),
                ],
            },
            {
                # The sagemaker SDK checks the execution role it passes (iam:SimulatePrincipalPolicy)
                # and lists buckets for its default bucket; both read-only.
                "Sid": "SdkChecks",
                "Effect": "Allow",
                "Action": "iam:SimulatePrincipalPolicy",
                "Resource": args.execution_role_arn,
            },
            {"Sid": "SdkListBuckets", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
            {
                # Training images are pinned by digest: resolve it in AWS's Deep Learning Containers registry.
                "Sid": "ResolveFrameworkImageDigests",
                "Effect": "Allow",
                "Action": "ecr:DescribeImages",
                "Resource": f"arn:aws:ecr:{region}:{DLC_ACCOUNT}:repository/*",
            },
            {
                "Sid": "ReadEndpoints",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",  # mlops verify follows endpoint -> config -> model -> package
                    "sagemaker:InvokeEndpoint",
                ],
                "Resource": [
                    sm(f"endpoint/{physical_name(stack)}-*"),
                    sm(f"endpoint-config/{physical_name(stack)}-*"),
                    sm(f"model/{physical_name(stack)}-*"),
                ],
            },
            pass_role("PassOnlyTheExecutionRole", args.execution_role_arn),
            {
                "Sid": "EnvironmentBuckets",
                "Effect": "Allow",
                "Action": [*READ_OBJECTS, "s3:PutObject", "s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": [*args.bucket_arns, *objects],
            },
            {
                "Sid": "EnvironmentKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": args.env.kms_key_arn,
            },
            {"Sid": "Alert", "Effect": "Allow", "Action": "sns:Publish", "Resource": args.topic_arn},
            {
                "Sid": "PushServingImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                    "ecr:DescribeImages",
                    "ecr:BatchGetImage",
                ],
                "Resource": args.repository_arn,
            },
            # GetAuthorizationToken has no resource-level permissions: it is read-only.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "PublishDrift",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/Drift"}},
            },
        ]


TRAINING_ACTIONS = ("sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob")


def sagemaker_guardrails(args: IdentityArgs) -> list[Statement]:
    """Denies for SageMaker requests that leave this environment's guardrails (AWS rule SM-GUARDRAIL-KEYS).

    Training and tuning jobs: network isolation on, output encrypted with this environment's key,
    a volume key (where one is sent) that is this key, a volume key on every type that accepts one
    (types with local NVMe storage send none: AWS rule INSTANCE-STORAGE), only the allowed instance
    types and, with a VPC, only its subnets and security groups. Models (CreateModel carries no KMS
    or instance-type key): network isolation and the VPC, unless the environment serves serverless,
    which takes neither (AWS rule SERVERLESS-EXCLUSIONS). Each is a Deny, so no other grant undoes it;
    each key is one the action carries (tests/permissions/test_condition_keys.py).
    """
    jobs = list(TRAINING_ACTIONS)
    models = args.serving_mode != "serverless"
    keyed = sorted(t for t in args.training_instance_types if accepts_volume_kms_key(t))
    found = [
        {
            "Sid": "GuardIsolatedJobsOnly",
            "Effect": "Deny",
            "Action": [*jobs, "sagemaker:CreateModel"] if models else jobs,
            "Resource": "*",
            # absent counts as off: IfExists makes a request that omits it match
            "Condition": {"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
        },
        {
            "Sid": "GuardOutputKey",
            "Effect": "Deny",
            "Action": jobs,
            "Resource": "*",
            "Condition": {"StringNotEquals": {"sagemaker:OutputKmsKey": args.env.kms_key_arn}},  # absent: denied
        },
        {
            "Sid": "GuardVolumeKeyIsOurs",
            "Effect": "Deny",
            "Action": jobs,
            "Resource": "*",
            "Condition": {
                "Null": {"sagemaker:VolumeKmsKey": "false"},  # only when a volume key is sent
                "StringNotEquals": {"sagemaker:VolumeKmsKey": args.env.kms_key_arn},
            },
        },
        {
            "Sid": "GuardAllowedInstanceTypes",
            "Effect": "Deny",
            "Action": jobs,
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringNotEquals": {"sagemaker:InstanceTypes": list(args.training_instance_types)}
            },
        },
        {
            "Sid": "GuardInstanceTypeNamed",
            "Effect": "Deny",
            "Action": jobs,
            "Resource": "*",
            "Condition": {"Null": {"sagemaker:InstanceTypes": "true"}},
        },
    ]
    if keyed:
        found.append(
            {
                # an instance type with an EBS volume must encrypt it with our key, not AWS's default
                "Sid": "GuardVolumeKeyWhereAccepted",
                "Effect": "Deny",
                "Action": jobs,
                "Resource": "*",
                "Condition": {
                    "Null": {"sagemaker:VolumeKmsKey": "true"},
                    "ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": keyed},
                },
            }
        )
    if args.vpc_subnet_ids:
        inside = [*jobs, "sagemaker:CreateModel"] if models else jobs
        for sid, key, ids in (
            ("Subnets", "sagemaker:VpcSubnets", args.vpc_subnet_ids),
            ("SecurityGroups", "sagemaker:VpcSecurityGroupIds", args.vpc_security_group_ids),
        ):
            found.append(
                {
                    "Sid": f"GuardInside{sid}",
                    "Effect": "Deny",
                    "Action": inside,
                    "Resource": "*",
                    "Condition": {"Null": {key: "true"}},
                }
            )
            found.append(
                {
                    "Sid": f"GuardOnly{sid}",
                    "Effect": "Deny",
                    "Action": inside,
                    "Resource": "*",
                    "Condition": {"ForAnyValue:StringNotEquals": {key: list(ids)}},
                }
            )
    return found
