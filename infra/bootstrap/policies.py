"""The deploy role's permissions and the permissions boundary every mlops role carries.

`pulumi up` of a stack needs, for each resource type the stack declares, that type's create,
read, update, delete and tag actions (tests/permissions derives them from the Service
Authorization Reference and proves this policy grants them). Scoped by the stacks' naming
convention (`mlops-*`), it reaches no other workload's resources.

Granting IAM to a role invites it to rewrite itself, so: the deploy roles and the bootstrap's
policies live under their own path, and both the deploy policy and the boundary deny every
change to them; every role the deploy role creates must carry the boundary, which denies the
same. Pattern: https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
(delegating role creation with a boundary condition) and
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html#awsidentityandaccessmanagementiam-policy-keys
(iam:PermissionsBoundary, iam:PolicyARN).
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from infra.bootstrap.contract import DEPLOY_PATH, VPC_DESCRIBE_ACTIONS, VPC_INTERFACE_ACTIONS
from infra.common import Statement, pass_role

# Services the stacks' resources belong to (the boundary's ceiling for every mlops role).
SERVICES = (
    "sagemaker",
    "s3",
    "kms",
    "ecr",
    "logs",
    "cloudwatch",
    "events",
    "sns",
    "application-autoscaling",
    "budgets",
)

# What `pulumi up` does to a stack's private network (infra/network.py). EC2 assigns the ids, and
# one call acts on several resource types (CreateSubnet on the VPC and the new subnet), so these
# are granted on `*`. Private DNS on an interface endpoint associates the VPC with AWS's hosted
# zone as the caller (CreateVpcEndpoint's dependent action in the Service Authorization Reference).
NETWORK_ACTIONS = (
    "ec2:CreateVpc",
    "ec2:DeleteVpc",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:ModifyVpcAttribute",
    "ec2:CreateSubnet",
    "ec2:DeleteSubnet",
    "ec2:DescribeSubnets",
    "ec2:ModifySubnetAttribute",
    "ec2:CreateRouteTable",
    "ec2:DeleteRouteTable",
    "ec2:DescribeRouteTables",
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
    "ec2:ReplaceRouteTableAssociation",
    "ec2:CreateSecurityGroup",
    "ec2:DeleteSecurityGroup",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifySecurityGroupRules",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
    "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
    "ec2:CreateVpcEndpoint",
    "ec2:DeleteVpcEndpoints",
    "ec2:DescribeVpcEndpoints",
    "ec2:ModifyVpcEndpoint",
    "ec2:DescribePrefixLists",
    "ec2:CreateFlowLogs",
    "ec2:DeleteFlowLogs",
    "ec2:DescribeFlowLogs",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:DescribeTags",
    "route53:AssociateVPCWithHostedZone",
)
FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"


def _arn(service: str, account: pulumi.Input[str], resource: str, region: str = "*") -> pulumi.Output[str]:
    regional = "" if service in ("iam", "s3", "budgets") else region
    owner = "" if service == "s3" else account
    return pulumi.Output.concat("arn:aws:", service, ":", regional, ":", owner, ":", resource)


def self_protection(account: pulumi.Input[str], boundary_arn: pulumi.Input[str]) -> list[Statement]:
    """Deny statements that keep the deploy roles, the bootstrap's policies and the boundary as made."""
    deploy_roles = _arn("iam", account, f"role{DEPLOY_PATH}*")
    bootstrap_policies = _arn("iam", account, f"policy{DEPLOY_PATH}*")
    return [
        {
            "Sid": "DenyChangingTheDeployRoles",
            "Effect": "Deny",
            "Action": [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:PutRolePermissionsBoundary",
                "iam:DeleteRolePermissionsBoundary",
                "iam:TagRole",
                "iam:UntagRole",
            ],
            "Resource": deploy_roles,
        },
        {
            "Sid": "DenyChangingTheBootstrapPolicies",
            "Effect": "Deny",
            "Action": [
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicy",
                "iam:DeletePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            "Resource": [bootstrap_policies, boundary_arn],
        },
        {
            "Sid": "DenyAttachingTheBootstrapPolicies",
            "Effect": "Deny",
            "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            "Resource": "*",
            "Condition": {"ArnLike": {"iam:PolicyARN": [bootstrap_policies, boundary_arn]}},
        },
        {
            "Sid": "DenyRemovingAnyBoundary",
            "Effect": "Deny",
            "Action": "iam:DeleteRolePermissionsBoundary",
            "Resource": "*",
        },
        {
            "Sid": "DenyRolesWithoutTheBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary_arn}},
        },
        {
            "Sid": "DenyTouchingTheOidcProvider",
            "Effect": "Deny",
            "Action": [
                "iam:CreateOpenIDConnectProvider",
                "iam:DeleteOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider",
                "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider",
            ],
            "Resource": "*",
        },
    ]


def boundary_statements(account: pulumi.Input[str], boundary_arn: pulumi.Input[str]) -> list[Statement]:
    """The ceiling of every mlops role: the stacks' services, roles named mlops-*, and self-protection."""
    return [
        {"Sid": "StackServices", "Effect": "Allow", "Action": [f"{s}:*" for s in SERVICES], "Resource": "*"},
        {"Sid": "PrivateNetworks", "Effect": "Allow", "Action": list(NETWORK_ACTIONS), "Resource": "*"},
        {
            "Sid": "TrainAndServeInsideVpcs",
            "Effect": "Allow",
            "Action": [*VPC_INTERFACE_ACTIONS, *VPC_DESCRIBE_ACTIONS],
            "Resource": "*",
        },
        {
            "Sid": "MlopsRolesOnly",
            "Effect": "Allow",
            "Action": "iam:*",
            "Resource": [
                _arn("iam", account, "role/mlops-*"),
                _arn("iam", account, "role/aws-service-role/*"),
            ],
        },
        *self_protection(account, boundary_arn),
    ]


def deploy_statements(account: pulumi.Input[str], boundary_arn: pulumi.Input[str]) -> list[Statement]:
    """What `pulumi up` (create, refresh, update, delete, tag) of any mlops stack needs, and no more."""
    sm: Callable[[str], pulumi.Output[str]] = lambda resource: _arn("sagemaker", account, resource)  # noqa: E731
    tags = ["TagResource", "UntagResource", "ListTagsForResource"]
    return [
        {
            "Sid": "Buckets",
            "Effect": "Allow",
            "Action": [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:ListBucket",
                "s3:GetBucket*",
                "s3:PutBucket*",
                "s3:DeleteBucketPolicy",
                "s3:DeleteBucketOwnershipControls",
                "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:GetAccelerateConfiguration",
                "s3:GetReplicationConfiguration",
            ],
            "Resource": "arn:aws:s3:::mlops-*",
        },
        # CreateKey names no resource (the key does not exist yet); the others act on keys of this account.
        {"Sid": "CreateKeys", "Effect": "Allow", "Action": ["kms:CreateKey", "kms:ListAliases"], "Resource": "*"},
        {
            "Sid": "Keys",
            "Effect": "Allow",
            "Action": [
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:EnableKeyRotation",
                "kms:EnableKey",
                "kms:DisableKey",
                "kms:UpdateKeyDescription",
                "kms:ScheduleKeyDeletion",
                "kms:ListResourceTags",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:CreateGrant",
                "kms:CreateAlias",
                "kms:DeleteAlias",
                "kms:UpdateAlias",
            ],
            "Resource": [_arn("kms", account, "key/*"), _arn("kms", account, "alias/mlops-*")],
        },
        {
            "Sid": "StackRoles",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:DeleteRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:ListRoleTags",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
            ],
            "Resource": _arn("iam", account, "role/mlops-*"),
        },
        {
            # Only with the boundary: a role made without it could do what the boundary denies.
            "Sid": "CreateStackRolesWithTheBoundary",
            "Effect": "Allow",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": _arn("iam", account, "role/mlops-*"),
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}},
        },
        # SageMaker models run as the stack's execution role: pass it, to SageMaker only.
        pass_role("PassExecutionRolesToSageMaker", _arn("iam", account, "role/mlops-*-sagemaker-execution")),
        {"Sid": "PrivateNetwork", "Effect": "Allow", "Action": list(NETWORK_ACTIONS), "Resource": "*"},
        # VPC flow logs deliver to their log group as the stack's flow-log role: pass it, to them only.
        pass_role("PassFlowLogRoles", _arn("iam", account, "role/mlops-*-vpc-flow-logs"), FLOW_LOGS_SERVICE),
        {
            # Endpoint autoscaling runs through Application Auto Scaling's service-linked role.
            "Sid": "AutoscalingServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": _arn("iam", account, "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*"),
            "Condition": {"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        },
        {
            "Sid": "Repositories",
            "Effect": "Allow",
            "Action": [
                "ecr:CreateRepository",
                "ecr:DeleteRepository",
                "ecr:DescribeRepositories",
                "ecr:PutImageScanningConfiguration",
                "ecr:PutImageTagMutability",
                "ecr:PutLifecyclePolicy",
                "ecr:GetLifecyclePolicy",
                "ecr:DeleteLifecyclePolicy",
                *(f"ecr:{t}" for t in tags),
            ],
            "Resource": _arn("ecr", account, "repository/mlops-*"),
        },
        {
            "Sid": "RegistryAndServing",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModelPackageGroup",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:DeleteModelPackageGroup",
                "sagemaker:PutModelPackageGroupPolicy",
                "sagemaker:GetModelPackageGroupPolicy",
                "sagemaker:DeleteModelPackageGroupPolicy",
                "sagemaker:DescribeModelPackage",
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:DeleteEndpoint",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
                "sagemaker:DeleteTags",
            ],
            "Resource": [
                sm("model-package-group/*"),
                sm("model-package/*"),
                sm("model/mlops-*"),
                sm("endpoint-config/mlops-*"),
                sm("endpoint/mlops-*"),
            ],
        },
        {
            "Sid": "EndpointAutoscaling",
            "Effect": "Allow",
            "Action": [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DescribeScalingPolicies",
                *(f"application-autoscaling:{t}" for t in tags),
            ],
            "Resource": "*",
        },
        {
            "Sid": "AlarmsAndDashboards",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:PutDashboard",
                "cloudwatch:GetDashboard",
                "cloudwatch:DeleteDashboards",
                *(f"cloudwatch:{t}" for t in tags),
            ],
            "Resource": [
                _arn("cloudwatch", account, "alarm:mlops-*"),
                # target tracking makes its own alarms, as the caller
                _arn("cloudwatch", account, "alarm:TargetTracking-endpoint/mlops-*"),
                pulumi.Output.concat("arn:aws:cloudwatch::", account, ":dashboard/mlops-*"),
            ],
        },
        {
            "Sid": "EventRules",
            "Effect": "Allow",
            "Action": [
                "events:PutRule",
                "events:DescribeRule",
                "events:DeleteRule",
                "events:EnableRule",
                "events:DisableRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:ListTargetsByRule",
                *(f"events:{t}" for t in tags),
            ],
            "Resource": _arn("events", account, "rule/mlops-*"),
        },
        {
            "Sid": "LogGroups",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:AssociateKmsKey",
                "logs:DisassociateKmsKey",
                *(f"logs:{t}" for t in tags),
                "logs:TagLogGroup",
                "logs:UntagLogGroup",
                "logs:ListTagsLogGroup",
            ],
            "Resource": [_arn("logs", account, "log-group:/mlops/*"), _arn("logs", account, "log-group:/mlops/*:*")],
        },
        {"Sid": "ListLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
        {
            "Sid": "AlertTopics",
            "Effect": "Allow",
            "Action": [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
                *(f"sns:{t}" for t in tags),
            ],
            "Resource": [_arn("sns", account, "mlops-*"), _arn("sns", account, "mlops-*:*")],
        },
        {
            # The reference gives these no resource type: only a grant on `*` covers them.
            "Sid": "TopicSubscriptions",
            "Effect": "Allow",
            "Action": ["sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe"],
            "Resource": "*",
        },
        {
            "Sid": "Budgets",
            "Effect": "Allow",
            "Action": ["budgets:ViewBudget", "budgets:ModifyBudget", *(f"budgets:{t}" for t in tags)],
            "Resource": pulumi.Output.concat("arn:aws:budgets::", account, ":budget/mlops-*"),
        },
        *self_protection(account, boundary_arn),
    ]
