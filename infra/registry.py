"""The model registry: one SageMaker model package group per model, and the ECR repository.

A package is registered where it was trained and promoted downstream as it is, so each group
carries a resource policy that lets the downstream environments' roles (dev's packages: staging
and prod; staging's: prod) read its packages, and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import physical_name, policy_document
from infra.config import DOWNSTREAM_ENVIRONMENTS


@dataclass(frozen=True)
class RegistryArgs:
    stack: str
    environment: str
    models: tuple[str, ...]
    account_id: pulumi.Input[str]
    region: str
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]


def group_name(model: str, stack: str) -> str:
    return f"{model}-{stack}"


class Registry(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.groups: dict[str, aws.sagemaker.ModelPackageGroup] = {}
        readers = DOWNSTREAM_ENVIRONMENTS.get(args.environment, ())
        for model in args.models:
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{model}",
                model_package_group_name=group_name(model, args.stack),
                model_package_group_description=f"{model} models trained in {args.stack}",
                tags=args.tags,
                opts=child,
            )
            self.groups[model] = group
            if readers:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{model}-read-downstream",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=self._read_policy(args, model, readers),
                    opts=child,
                )

        self.repository = aws.ecr.Repository(
            f"{name}-images",
            name=physical_name(args.stack),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=False,
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-images-expire-untagged",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "expire untagged images after 14 days",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 14,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "modelPackageGroups": {m: g.model_package_group_name for m, g in self.groups.items()},
                "ecrRepositoryUrl": self.repository.repository_url,
            }
        )

    @staticmethod
    def _read_policy(args: RegistryArgs, model: str, readers: tuple[str, ...]) -> pulumi.Output[str]:
        """Roles of the downstream environments (by name prefix, so they may be deployed later) may read packages."""
        group_arn = pulumi.Output.concat(
            "arn:aws:sagemaker:",
            args.region,
            ":",
            args.account_id,
            ":model-package-group/",
            group_name(model, args.stack),
        )
        package_arns = pulumi.Output.concat(
            "arn:aws:sagemaker:",
            args.region,
            ":",
            args.account_id,
            ":model-package/",
            group_name(model, args.stack),
            "/*",
        )
        return policy_document(
            [
                {
                    "Sid": "ReadByDownstreamEnvironments",
                    "Effect": "Allow",
                    "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")},
                    "Action": [
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:ListModelPackages",
                        "sagemaker:DescribeModelPackageGroup",
                    ],
                    "Resource": [group_arn, package_arns],
                    "Condition": {
                        "ArnLike": {
                            "aws:PrincipalArn": [
                                pulumi.Output.concat(
                                    "arn:aws:iam::", args.account_id, ":role/", physical_name(env), "-*"
                                )
                                for env in readers
                            ]
                        }
                    },
                }
            ]
        )
