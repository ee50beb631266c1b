"""The model registry: one SageMaker model package group per model, and the ECR repository.

A package is registered where it was trained and promoted downstream as it is, so each group
carries a resource policy for the downstream environments' roles (dev's packages: staging and
prod; staging's: prod).

AWS rule IAM-SAME-ACCOUNT-RESOURCE-POLICY: within one account a resource policy's Allow grants
nothing IAM does not already grant, and an Allow to the account root only delegates to IAM; a
resource policy restricts only with Deny. So the policy says two things, truthfully:
- ReadByDownstreamEnvironments (Allow) lets those roles read packages when they live in another
  account (cross-account access needs both sides to allow); in one account it adds nothing.
- DownstreamEnvironmentsOnlyRead (Deny) is what restricts: those roles can do nothing but read
  this group's packages (no approval changes, no new versions, no deletion), whatever IAM
  policies they are given later.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import Component, physical_name, policy_document
from infra.environment import Environment


@dataclass(frozen=True)
class RegistryArgs:
    env: Environment
    models: tuple[str, ...]


# What a downstream environment needs of an upstream package: find it and read it.
READ_ACTIONS = ("sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackageGroup")


def group_name(model: str, stack: str) -> str:
    return f"{model}-{stack}"


class Registry(Component):
    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:registry:Registry", name, opts)
        self.groups: dict[str, aws.sagemaker.ModelPackageGroup] = {}
        readers = args.env.downstream
        for model in args.models:
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{model}",
                model_package_group_name=group_name(model, args.env.stack),
                model_package_group_description=f"{model} models trained in {args.env.stack}",
                opts=self.child,
            )
            self.groups[model] = group
            if readers:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{model}-read-downstream",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=self._read_policy(args, model, readers),
                    opts=self.child,
                )

        self.repository = aws.ecr.Repository(
            f"{name}-images",
            name=physical_name(args.env.stack),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.env.kms_key_arn}],
            force_delete=False,
            opts=self.child,
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
            opts=self.child,
        )
        self.register_outputs(
            {
                "modelPackageGroups": {m: g.model_package_group_name for m, g in self.groups.items()},
                "ecrRepositoryUrl": self.repository.repository_url,
            }
        )

    @staticmethod
    def _read_policy(args: RegistryArgs, model: str, readers: tuple[str, ...]) -> pulumi.Output[str]:
        """Downstream roles (by name prefix, so they may be deployed later) read packages, and only read."""
        group_arn = pulumi.Output.concat(
            "arn:aws:sagemaker:",
            args.env.region,
            ":",
            args.env.account_id,
            ":model-package-group/",
            group_name(model, args.env.stack),
        )
        package_arns = pulumi.Output.concat(
            "arn:aws:sagemaker:",
            args.env.region,
            ":",
            args.env.account_id,
            ":model-package/",
            group_name(model, args.env.stack),
            "/*",
        )
        downstream_roles = {
            "ArnLike": {
                "aws:PrincipalArn": [
                    pulumi.Output.concat("arn:aws:iam::", args.env.account_id, ":role/", physical_name(env), "-*")
                    for env in readers
                ]
            }
        }
        return policy_document(
            [
                {
                    # Needed only where a downstream environment lives in another account; then its
                    # account root goes here. Within this account it grants nothing beyond IAM.
                    "Sid": "ReadByDownstreamEnvironments",
                    "Effect": "Allow",
                    "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", args.env.account_id, ":root")},
                    "Action": list(READ_ACTIONS),
                    "Resource": [group_arn, package_arns],
                    "Condition": downstream_roles,
                },
                {
                    # The restriction: a Deny holds in every account, whatever IAM allows.
                    "Sid": "DownstreamEnvironmentsOnlyRead",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "NotAction": list(READ_ACTIONS),
                    "Resource": [group_arn, package_arns],
                    "Condition": downstream_roles,
                },
            ]
        )
