"""The GPU training platform: the SageMaker execution role and the defaults the pipeline uses.

The role is trusted by SageMaker in this account only and may touch exactly this
environment's buckets, key, repository and log streams — never another environment's, never
`*` actions, never an AWS-managed FullAccess policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.bootstrap.contract import VPC_DESCRIBE_ACTIONS, VPC_INTERFACE_ACTIONS, boundary_arn
from infra.common import (
    READ_OBJECTS,
    Component,
    Statement,
    bucket_and_objects,
    physical_name,
    policy_document,
    upstream_objects,
)
from infra.environment import Environment

# AWS Deep Learning Containers live in this account's registry in every commercial region.
DLC_ACCOUNT = "763104351884"
# Every action that writes a model package or its group (Service Authorization Reference, sagemaker).
MODEL_PACKAGE_WRITES = (
    "sagemaker:CreateModelPackage",
    "sagemaker:UpdateModelPackage",
    "sagemaker:DeleteModelPackage",
    "sagemaker:CreateModelPackageGroup",
    "sagemaker:DeleteModelPackageGroup",
    "sagemaker:PutModelPackageGroupPolicy",
    "sagemaker:DeleteModelPackageGroupPolicy",
)
PIPELINE_METRIC_NAMESPACES = [
    "/aws/sagemaker/TrainingJobs",
    "/aws/sagemaker/Endpoints",
    "MLOps/Drift",
    "MLOps/Training",
]


@dataclass(frozen=True)
class TrainingArgs:
    env: Environment
    data_bucket_arn: pulumi.Input[str]
    artifact_bucket_arn: pulumi.Input[str]
    capture_bucket_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    log_days: int
    vpc_enabled: bool


class TrainingPlatform(Component):
    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:training:TrainingPlatform", name, opts)
        account = args.env.account_id
        prefix = physical_name(args.env.stack)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-pipeline-logs",
            name=f"/mlops/{args.env.stack}/pipeline",
            retention_in_days=args.log_days,
            kms_key_id=args.env.kms_key_arn,
            opts=self.child,
        )
        self.role = aws.iam.Role(
            f"{name}-execution-role",
            name=f"{prefix}-sagemaker-execution",
            description=f"SageMaker training jobs and models of mlops {args.env.stack}",
            assume_role_policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                    }
                ]
            ),
            permissions_boundary=boundary_arn(account),  # the deploy role may create no role without it
            max_session_duration=43200,
            opts=self.child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-permissions",
            role=self.role.id,
            policy=policy_document(self._statements(args, prefix)),
            opts=self.child,
        )
        self.register_outputs({"executionRoleArn": self.role.arn, "logGroupName": self.log_group.name})

    @staticmethod
    def _statements(args: TrainingArgs, prefix: str) -> list[Statement]:
        account, region = args.env.account_id, args.env.region
        statements: list[Statement] = [
            {
                "Sid": "ReadTrainingData",
                "Effect": "Allow",
                "Action": [*READ_OBJECTS, "s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket_and_objects(args.data_bucket_arn),
            },
            {
                "Sid": "ReadWriteArtifacts",
                "Effect": "Allow",
                "Action": [
                    *READ_OBJECTS,
                    "s3:PutObject",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:AbortMultipartUpload",
                ],
                "Resource": bucket_and_objects(args.artifact_bucket_arn),
            },
            {
                "Sid": "WriteCapturedData",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetBucketLocation"],
                "Resource": bucket_and_objects(args.capture_bucket_arn),
            },
            {
                "Sid": "UseEnvironmentKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                "Resource": args.env.kms_key_arn,
            },
            {
                "Sid": "PullEnvironmentAndFrameworkImages",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": [args.repository_arn, f"arn:aws:ecr:{region}:{DLC_ACCOUNT}:repository/*"],
            },
            # GetAuthorizationToken has no resource-level permissions: it is read-only.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "WriteOwnLogStreams",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [
                    pulumi.Output.concat(
                        "arn:aws:logs:",
                        region,
                        ":",
                        account,
                        ":log-group:/aws/sagemaker/TrainingJobs:log-stream:",
                        prefix,
                        "-*",
                    ),
                    pulumi.Output.concat(
                        "arn:aws:logs:", region, ":", account, ":log-group:/aws/sagemaker/TrainingJobs"
                    ),
                    pulumi.Output.concat(
                        "arn:aws:logs:", region, ":", account, ":log-group:/aws/sagemaker/Endpoints/", prefix, "-*"
                    ),
                ],
            },
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            {
                "Sid": "PublishOwnMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": PIPELINE_METRIC_NAMESPACES}},
            },
        ]
        # A training container runs code we did not write line by line (its dependencies): whatever it
        # does with this role, it may never register, approve or delete a model package.
        statements.append(
            {
                "Sid": "NeverChangeModelPackages",
                "Effect": "Deny",
                "Action": list(MODEL_PACKAGE_WRITES),
                "Resource": "*",
            }
        )
        if args.env.upstream:
            # A promoted package's model data and serving image stay in the environment that trained
            # it: read them there, and decrypt with that environment's key (matched by alias).
            statements.append(
                {
                    "Sid": "ReadPromotedModelData",
                    "Effect": "Allow",
                    "Action": list(READ_OBJECTS),
                    "Resource": upstream_objects(args.env.upstream, account, "/training-output/*"),
                }
            )
            statements.append(
                {
                    "Sid": "PullPromotedServingImages",
                    "Effect": "Allow",
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    "Resource": [
                        pulumi.Output.concat("arn:aws:ecr:", region, ":", account, ":repository/", physical_name(up))
                        for up in args.env.upstream
                    ],
                }
            )
            statements.append(
                {
                    "Sid": "DecryptPromotedModelData",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:DescribeKey"],
                    "Resource": pulumi.Output.concat("arn:aws:kms:", region, ":", account, ":key/*"),
                    "Condition": {
                        "ForAnyValue:StringEquals": {
                            "kms:ResourceAliases": [f"alias/{physical_name(up)}" for up in args.env.upstream]
                        }
                    },
                }
            )
        if args.vpc_enabled:
            statements.append(
                {
                    "Sid": "RunInsideTheVpc",
                    "Effect": "Allow",
                    "Action": list(VPC_INTERFACE_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
                }
            )
            statements.append(
                {
                    "Sid": "DescribeVpc",
                    "Effect": "Allow",
                    "Action": list(VPC_DESCRIBE_ACTIONS),
                    "Resource": "*",
                }
            )
        return statements
