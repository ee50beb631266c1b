"""Identity: the role GitHub Actions assumes (OIDC, no stored keys) to deploy one environment.

It is trusted only for this repository's GitHub environment of the same name, so a workflow
on a feature branch cannot deploy prod. Its permissions are this environment's pipeline
actions on this environment's resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import physical_name, policy_document

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# Thumbprint of GitHub's OIDC certificate chain (IAM ignores it for this provider, but the API requires one).
GITHUB_OIDC_THUMBPRINT = "6938fd4d98bab03faadb97b34396831e3780aea1"


@dataclass(frozen=True)
class IdentityArgs:
    stack: str
    account_id: pulumi.Input[str]
    region: str
    repository: str
    github_environment: str
    manage_oidc_provider: bool
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
        account = args.account_id
        if args.manage_oidc_provider:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_id_lists=["sts.amazonaws.com"],
                thumbprint_lists=[GITHUB_OIDC_THUMBPRINT],
                tags=args.tags,
                opts=child,
            )
            provider_arn = provider.arn
        else:
            provider_arn = pulumi.Output.concat("arn:aws:iam::", account, ":oidc-provider/", GITHUB_OIDC_HOST)

        self.role = aws.iam.Role(
            f"{name}-deployer",
            name=physical_name(args.stack, "github-deployer"),
            description=(
                f"GitHub Actions deploys mlops {args.stack} from {args.repository} "
                f"(environment {args.github_environment})"
            ),
            assume_role_policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                                f"{GITHUB_OIDC_HOST}:sub": (
                                    f"repo:{args.repository}:environment:{args.github_environment}"
                                ),
                            }
                        },
                    }
                ]
            ),
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
    def _pipeline_statements(args: IdentityArgs) -> list[dict]:
        account, region, stack = args.account_id, args.region, args.stack
        sm = lambda kind: pulumi.Output.concat("arn:aws:sagemaker:", region, ":", account, ":", kind)  # noqa: E731
        objects = [pulumi.Output.concat(arn, "/*") for arn in args.bucket_arns]
        return [
            {
                "Sid": "RunTrainingJobs",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                "Resource": sm(f"training-job/{physical_name(stack)}-*"),
                # CI may launch only the GPU types this environment allows.
                "Condition": {
                    "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(args.training_instance_types)}
                },
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
            *(
                [
                    {
                        "Sid": "ReadUpstreamPackages",
                        "Effect": "Allow",
                        "Action": [
                            "sagemaker:DescribeModelPackage",
                            "sagemaker:ListModelPackages",
                            "sagemaker:DescribeModelPackageGroup",
                        ],
                        "Resource": [
                            arn
                            for up in args.upstream
                            for arn in (sm(f"model-package/*-{up}/*"), sm(f"model-package-group/*-{up}"))
                        ],
                    }
                ]
                if args.upstream
                else []
            ),
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
