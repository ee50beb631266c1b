"""kernel.aws_model: requests checked against botocore's service models, read at run time."""

import math

import pytest

from kernel.aws_model import UNKNOWN, member_limits, validate_member, validate_request

VARIANT = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}


def _paths(problems):
    return {p.path for p in problems}


def test_valid_endpoint_config_has_no_problem():
    assert (
        validate_request(
            "sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "a-1", "ProductionVariants": [VARIANT]}
        )
        == []
    )


def test_each_kind_of_model_constraint_is_reported_with_path_value_and_source():
    request = {
        "EndpointConfigName": "mlops-dev_churn",  # pattern
        "ProductionVariants": [
            {
                **VARIANT,
                "InstanceType": "ml.nope",
                "InitialInstanceCount": 0,
                "ServerlessConfig": {"MemorySizeInMB": 999, "MaxConcurrency": 1},
            }
        ],
        "Surprise": 1,  # unknown member
    }
    problems = validate_request("sagemaker", "CreateEndpointConfig", request)
    assert _paths(problems) == {
        "EndpointConfigName",
        "ProductionVariants[0].InstanceType",
        "ProductionVariants[0].InitialInstanceCount",
        "ProductionVariants[0].ServerlessConfig.MemorySizeInMB",
        "Surprise",
    }
    by_path = {p.path: p for p in problems}
    memory = by_path["ProductionVariants[0].ServerlessConfig.MemorySizeInMB"]
    assert memory.value == 999 and "between 1024 and 6144" in memory.constraint
    assert memory.source == "botocore sagemaker CreateEndpointConfig"
    assert "999" in memory.message and "1024" in memory.message and "botocore sagemaker" in memory.message


def test_required_members_and_list_sizes():
    problems = validate_request(
        "sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "a", "ProductionVariants": []}
    )
    assert _paths(problems) == {"ProductionVariants"}
    assert "1-10 items" in problems[0].constraint
    missing = validate_request("sagemaker", "CreateEndpoint", {"EndpointName": "a"})
    assert _paths(missing) == {"EndpointConfigName"} and "missing" in missing[0].message


def test_partial_requests_and_unknown_values_are_not_guessed():
    assert validate_request("sagemaker", "CreateEndpoint", {"EndpointName": "a"}, partial=True) == []
    assert validate_request("sagemaker", "CreateEndpoint", {"EndpointName": UNKNOWN, "EndpointConfigName": "b"}) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1.5, True, "3"])
def test_integers_refuse_nan_infinity_fractions_and_other_types(bad):
    request = {"AlarmName": "a", "EvaluationPeriods": bad, "ComparisonOperator": "GreaterThanThreshold"}
    assert "EvaluationPeriods" in _paths(validate_request("cloudwatch", "PutMetricAlarm", request))


def test_doubles_refuse_nan_and_infinity():
    request = {
        "AlarmName": "a",
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": math.nan,
    }
    assert _paths(validate_request("cloudwatch", "PutMetricAlarm", request)) == {"Threshold"}


def test_map_sizes_and_keys():
    too_many = {f"k{i}": "v" for i in range(51)}
    problems = validate_request(
        "sagemaker", "UpdateModelPackage", {"ModelPackageArn": UNKNOWN, "CustomerMetadataProperties": too_many}
    )
    assert _paths(problems) == {"CustomerMetadataProperties"} and "1-50 entries" in problems[0].constraint


@pytest.mark.parametrize(
    ("service", "operation", "member", "bad"),
    [
        ("iam", "CreateRole", "RoleName", "r" * 65),
        ("iam", "CreatePolicy", "PolicyName", "p" * 129),
        ("iam", "PutRolePolicy", "PolicyName", "bad name"),
        ("kms", "CreateAlias", "AliasName", "alias/" + "a" * 251),
        ("cloudwatch", "PutMetricAlarm", "AlarmName", "a" * 256),
        ("ecr", "CreateRepository", "repositoryName", "Upper"),
        ("events", "PutRule", "Name", "a" * 65),
        ("application-autoscaling", "PutScalingPolicy", "PolicyName", "a" * 257),
        ("sagemaker", "CreateModel", "ModelName", "a" * 64),
        ("sagemaker", "CreateTrainingJob", "TrainingJobName", "job_1"),
        ("sagemaker", "CreateHyperParameterTuningJob", "HyperParameterTuningJobName", "a" * 33),
        ("sagemaker", "CreateModelPackage", "ModelPackageGroupName", "a" * 64),
    ],
)
def test_names_across_services(service, operation, member, bad):
    problems = validate_member(service, operation, member, bad)
    assert problems and problems[0].path == member and problems[0].source == f"botocore {service} {operation}"


def test_limits_come_from_botocore_not_from_us():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("iam").operation_model("CreateRole").input_shape
    assert member_limits("iam", "CreateRole", "RoleName")["max"] == shape.members["RoleName"].metadata["max"] == 64


def test_register_scalable_target_enums():
    request = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/e/variant/v",
        "ScalableDimension": "sagemaker:variant:Nope",
        "MinCapacity": 1,
    }
    assert _paths(validate_request("application-autoscaling", "RegisterScalableTarget", request)) == {
        "ScalableDimension"
    }
