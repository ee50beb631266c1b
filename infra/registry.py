"""The model registry: one SageMaker model package group per model, and the ECR repository.

Promotion crosses environments, so each group carries a resource policy that lets the next
environment's roles (dev -> staging -> prod) read its packages, and nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import physical_name, policy_document

NEXT_ENVIRONMENT = {"dev": "staging", "staging": "prod", "local": ""}


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
        next_env = NEXT_ENVIRONMENT.get(args.environment, "")
        for model in args.models:
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{model}",
                model_package_group_name=group_name(model, args.stack),
                model_package_group_description=f"{model} models trained in {args.stack}",
                tags=args.tags,
                opts=child,
            )
            self.groups[model] = group
            if next_env:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{model}-read-by-{next_env}",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=self._read_policy(args, model, next_env),
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
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": "expire untagged images after 14 days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                              "countUnit": "days", "countNumber": 14},
                "action": {"type": "expire"},
            }]}),
            opts=child,
        )
        self.register_outputs({
            "modelPackageGroups": {m: g.model_package_group_name for m, g in self.groups.items()},
            "ecrRepositoryUrl": self.repository.repository_url,
        })

    @staticmethod
    def _read_policy(args: RegistryArgs, model: str, next_env: str) -> pulumi.Output[str]:
        """Roles of the next environment (by name prefix, so it may be deployed later) may read packages."""
        group_arn = pulumi.Output.concat("arn:aws:sagemaker:", args.region, ":", args.account_id,
                                         ":model-package-group/", group_name(model, args.stack))
        package_arns = pulumi.Output.concat("arn:aws:sagemaker:", args.region, ":", args.account_id,
                                            ":model-package/", group_name(model, args.stack), "/*")
        return policy_document([{
            "Sid": f"ReadBy{next_env.capitalize()}",
            "Effect": "Allow",
            "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                       "sagemaker:DescribeModelPackageGroup"],
            "Resource": [group_arn, package_arns],
            "Condition": {"ArnLike": {"aws:PrincipalArn": pulumi.Output.concat(
                "arn:aws:iam::", args.account_id, ":role/", physical_name(next_env), "-*")}},
        }])
