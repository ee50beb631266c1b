"""Identity: the pipeline role GitHub Actions assumes (OIDC, no stored keys) for one environment.

It is trusted only for this repository's GitHub environment of the same name, so a workflow
on a feature branch cannot act on prod. Its permissions are this environment's pipeline
actions (train, register, promote, monitor) on this environment's resources, proved call by
call in tests/permissions. It cannot deploy: `pulumi up` runs as the deploy role that the
bootstrap program (infra/bootstrap/) makes outside every stack, so no stack manages the role
that deploys it. Every role a stack creates carries the bootstrap's permissions boundary; the
deploy role may create no role without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.bootstrap.contract import boundary_arn, github_trust, oidc_provider_arn
from infra.common import physical_name, policy_document
from infra.training import DLC_ACCOUNT

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # SageMaker's, one per account and region


@dataclass(frozen=True)
class IdentityArgs:
    stack: str
    account_id: pulumi.Input[str]
    region: str
    repository: str
    github_environment: str
    execution_role_arn: pulumi.Input[str]
    bucket_arns: list[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    training_instance_types: tuple[str, ...]
    upstream: tuple[str, ...]  # environments whose packages may be promoted to this one
    tags: dict[str, str]


class Identity(pulumi.ComponentResource):
    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:identity:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-deployer",
            name=physical_name(args.stack, "github-deployer"),
            description=(
                f"GitHub Actions runs the mlops {args.stack} pipeline from {args.repository} "
                f"(environment {args.github_environment}); pulumi up runs as the bootstrap's deploy role"
            ),
            assume_role_policy=policy_document(
                github_trust(oidc_provider_arn(args.account_id), args.repository, args.github_environment)
            ),
            permissions_boundary=boundary_arn(args.account_id),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-deployer-pipeline",
            role=self.role.id,
            policy=policy_document(self._pipeline_statements(args)),
            opts=child,
        )
        self.register_outputs({"deployerRoleArn": self.role.arn})

    @staticmethod
    def _upstream_statements(args: IdentityArgs, sm) -> list[dict]:
        """What a promoted package needs where it was trained: its record, model data and drift baseline."""
        if not args.upstream:
            return []
        account, region = args.account_id, args.region
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
                    for up in args.upstream
                    for arn in (sm(f"model-package/*-{up}/*"), sm(f"model-package-group/*-{up}"))
                ],
            },
            {
                # The model data and drift baseline stay beside the training output upstream.
                "Sid": "ReadUpstreamModelData",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [
                    pulumi.Output.concat(
                        "arn:aws:s3:::", physical_name(up, "artifacts"), "-", account, "/training-output/*"
                    )
                    for up in args.upstream
                ],
            },
            {
                # ...encrypted with that environment's key, matched by its alias (the key id is not known here).
                "Sid": "DecryptUpstreamModelData",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": pulumi.Output.concat("arn:aws:kms:", region, ":", account, ":key/*"),
                "Condition": {
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": [f"alias/{physical_name(up)}" for up in args.upstream]
                    }
                },
            },
        ]

    @staticmethod
    def _pipeline_statements(args: IdentityArgs) -> list[dict]:
        account, region, stack = args.account_id, args.region, args.stack
        sm = lambda kind: pulumi.Output.concat("arn:aws:sagemaker:", region, ":", account, ":", kind)  # noqa: E731
        objects = [pulumi.Output.concat(arn, "/*") for arn in args.bucket_arns]
        return [
            {
                "Sid": "RunTrainingJobs",
                "Effect": "Allow",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": sm(f"training-job/{physical_name(stack)}-*"),
                # CI may launch only the GPU types this environment allows. Only CreateTrainingJob
                # carries this key: on any other action ForAllValues would be vacuously true.
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
                "Sid": "ManageModelPackages",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
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
                    "sagemaker:InvokeEndpoint",
                ],
                "Resource": [sm(f"endpoint/{physical_name(stack)}-*"), sm(f"endpoint-config/{physical_name(stack)}-*")],
            },
            {
                "Sid": "PassOnlyTheExecutionRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": args.execution_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "EnvironmentBuckets",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                ],
                "Resource": [*args.bucket_arns, *objects],
            },
            {
                "Sid": "EnvironmentKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": args.kms_key_arn,
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
