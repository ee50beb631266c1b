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


KEY = "arn:aws:kms:us-east-1:123456789012:key/f1220eb2-2d10-4aa3-80da-aad419f0ff4a"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev@sha256:" + "a" * 64


def test_a_realistic_training_job_and_model_package_pass():
    """AWS rule: BOTOCORE-MODEL: no false alarm on the requests the pipeline sends (patterns as full matches)."""
    job = {
        "TrainingJobName": "mlops-dev-churn-2026-11-29-07-30-00-123",
        "RoleArn": "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-execution",
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "val:roc_auc", "Regex": "roc_auc=([0-9.]+)"}],
        },
        "HyperParameters": {"epochs": "10", "lr": "0.001"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://mlops-dev-data-123456789012/churn/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://mlops-dev-artifacts-123456789012/training-output/", "KmsKeyId": KEY},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": "s3://mlops-dev-artifacts-123456789012/checkpoints/churn/x/"},
        "VpcConfig": {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]},
        "Tags": [{"Key": "owner", "Value": "ml-platform"}],
    }
    assert validate_request("sagemaker", "CreateTrainingJob", job) == []
    job["ResourceConfig"]["InstanceType"] = "ml.g5.huge"
    job["HyperParameters"]["lr"] = "x" * 2501
    assert _paths(validate_request("sagemaker", "CreateTrainingJob", job)) == {
        "ResourceConfig.InstanceType",
        "HyperParameters['lr']",
    }
    package = {
        "ModelPackageGroupName": "churn-dev",
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {"git": "abc"},
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/k/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    }
    assert validate_request("sagemaker", "CreateModelPackage", package) == []


def test_a_java_pattern_python_cannot_compile_is_skipped_and_counted():
    from kernel.aws_model import member_limits, skipped_patterns

    pattern = member_limits("budgets", "CreateBudget", "Budget.BudgetName")["pattern"]  # (?i) mid-pattern
    assert validate_member("budgets", "CreateBudget", "Budget.BudgetName", "mlops-dev-monthly") == []
    assert pattern in skipped_patterns()
