"""The call -> IAM request map is derived from the Service Authorization Reference (kernel/permissions.py)."""

from __future__ import annotations

import pytest

from kernel.deploy_permissions import actions_for_type
from kernel.iam_eval import Request
from kernel.permissions import ACTION_OF, PROJECT_CALLS, Call, action_entries, actions_of, requests_for

ACCOUNT, REGION = "123456789012", "us-east-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"


def requests(call: Call) -> list[Request]:
    return requests_for(call, REGION, ACCOUNT, lambda bucket: (KEY, ["alias/mlops-dev"]))


def test_every_declared_call_maps_to_actions_the_reference_knows():
    for service, operation in PROJECT_CALLS:
        for action in actions_of(service, operation):
            assert action_entries(action), action
    assert actions_of("s3", "HeadObject") == ACTION_OF[("s3", "HeadObject")] == ("s3:GetObject",)
    assert actions_of("sagemaker-runtime", "InvokeEndpoint") == ("sagemaker:InvokeEndpoint",)


def test_an_undeclared_call_is_refused_with_what_to_do():
    with pytest.raises(KeyError, match=r"not declared in kernel\.permissions\.PROJECT_CALLS"):
        requests(Call("sagemaker", "DeleteEndpoint", {"EndpointName": "x"}))


def test_resources_come_from_the_reference_arn_formats_and_the_call_parameters():
    (r,) = requests(Call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "mlops-dev-churn-1"}))
    assert r.resource == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/mlops-dev-churn-1"
    (r,) = requests(Call("ecr", "DescribeImages", {"registryId": "763104351884", "repositoryName": "pytorch-training"}))
    assert r.resource == f"arn:aws:ecr:{REGION}:763104351884:repository/pytorch-training"
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-dev/1"
    (r,) = requests(Call("sagemaker", "DescribeModelPackage", {"ModelPackageName": arn}))
    assert r.resource == arn


def test_an_action_without_a_resource_the_call_names_is_requested_on_star():
    """AWS rule: IAM-NO-RESOURCE-TYPE (only a grant on '*' covers such a request)."""
    (r,) = requests(Call("s3", "ListBuckets", {}))
    assert (r.action, r.resource) == ("s3:ListAllMyBuckets", "*")
    (r,) = requests(Call("sagemaker", "ListModelPackages", {"ModelPackageGroupName": "churn-dev"}))
    assert r.resource == "*"


def test_s3_on_a_kms_encrypted_bucket_needs_the_key():
    """AWS rule: IAM-S3-KMS (GetObject needs kms:Decrypt, PutObject kms:GenerateDataKey, as the caller)."""
    get = requests(Call("s3", "GetObject", {"Bucket": "mlops-dev-artifacts-1", "Key": "a"}))
    assert [(r.action, r.resource) for r in get] == [
        ("s3:GetObject", "arn:aws:s3:::mlops-dev-artifacts-1/a"),
        ("kms:Decrypt", KEY),
    ]
    assert get[1].context["kms:ResourceAliases"] == ["alias/mlops-dev"]
    put = requests(Call("s3", "PutObject", {"Bucket": "mlops-dev-artifacts-1", "Key": "a"}))
    assert [r.action for r in put] == ["s3:PutObject", "kms:GenerateDataKey"]
    assert [r.action for r in requests(Call("s3", "HeadObject", {"Bucket": "b", "Key": "a"}))] == ["s3:GetObject"]


def test_passing_a_role_and_tagging_are_the_reference_dependent_actions():
    """AWS rule: IAM-PASSROLE (a service acts as a role only if the caller may iam:PassRole it to that service)."""
    role = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-sagemaker-execution"
    params = {
        "TrainingJobName": "j",
        "RoleArn": role,
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge"},
        "Tags": [{"Key": "a", "Value": "b"}],
        "EnableNetworkIsolation": True,
    }
    found = {r.action: r for r in requests(Call("sagemaker", "CreateTrainingJob", params))}
    assert set(found) == {"sagemaker:CreateTrainingJob", "iam:PassRole", "sagemaker:AddTags"}
    assert found["iam:PassRole"].resource == role
    assert found["iam:PassRole"].context["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert found["sagemaker:CreateTrainingJob"].context["sagemaker:InstanceTypes"] == ["ml.g5.xlarge"]
    assert found["sagemaker:CreateTrainingJob"].context["sagemaker:NetworkIsolation"] == "true"


def test_resource_type_actions_come_from_the_reference_by_noun():
    endpoint = actions_for_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.phases["create"] == ("sagemaker:CreateEndpoint",)
    assert endpoint.phases["update"] == ("sagemaker:UpdateEndpoint",)
    assert set(endpoint.phases["tag"]) == {"sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"}
    versioning = actions_for_type("aws:s3/bucketVersioning:BucketVersioning", taggable=False)
    assert versioning.phases["delete"] == ("s3:PutBucketVersioning",) and versioning.phases["tag"] == ()
    with pytest.raises(KeyError, match="add its IAM noun to TYPE_NOUNS"):
        actions_for_type("aws:sagemaker/imaginary:Imaginary")
