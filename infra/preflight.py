"""Preflight: check a stack's resources against what AWS will accept, before `pulumi up` sends them.

Each resource record of the preview graph (type token, name, wire-form inputs) is mapped to the
API request AWS would receive to create it (`aws:sagemaker/endpointConfiguration:
EndpointConfiguration` -> sagemaker CreateEndpointConfig). Each request is then checked against
botocore's service model (`kernel.aws_model`) and all requests together against the documented
cross-field rules (`kernel.aws_rules`). Only what maps faithfully is mapped; a value unknown at
preview time is left unchecked, never guessed.

Config-level rules (names, ranges) are already refused by `kernel.stack_config.parse_config` before any
resource is declared; this pass sees what the program actually declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel.aws_model import UNKNOWN, validate_request
from kernel.aws_rules import Request, check_requests
from kernel.names import NAME_MEMBERS
from kernel.stack_config import bulleted

if TYPE_CHECKING:
    from infra.preview import Preview

UNKNOWN_WIRE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's marker for a value known only after deployment
# A resource declared without a physical name gets Pulumi's auto-name: its logical name, a hyphen
# and 7 random hex characters (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming).
AUTONAME_SUFFIX = "-" + "0" * 7


@dataclass(frozen=True)
class Finding:
    """One thing AWS would refuse: the rule (a documented ID, or BOTOCORE-MODEL for botocore's), where, why."""

    rule: str
    resource: str
    message: str
    urn: str = ""
    type: str = ""
    name: str = ""

    def __str__(self) -> str:
        return self.message


class PreflightError(RuntimeError):
    def __init__(self, stack: str, findings: list[Finding]):
        self.stack = stack
        self.findings = findings
        super().__init__(
            f"stack '{stack}' fails the AWS preflight with {len(findings)} problem(s):\n{bulleted(findings)}"
        )


# --- wire form -> API request ------------------------------------------------------------------


def _v(value: Any) -> Any:
    """Unknown markers become UNKNOWN (never checked); floats that are whole numbers stay floats."""
    if isinstance(value, str) and value == UNKNOWN_WIRE:
        return UNKNOWN
    return value


def _pick(props: dict[str, Any], mapping: dict[str, str | tuple[str, Callable[[Any], Any]]]) -> dict[str, Any]:
    """API members from wire properties: {ApiMember: wireKey | (wireKey, convert)}; absent stays absent."""
    out: dict[str, Any] = {}
    for member, spec in mapping.items():
        key, convert = (spec, None) if isinstance(spec, str) else spec
        value = props.get(key)
        if value is None or value == "":  # the provider sends no empty string (Terraform's GetOk skips it)
            continue
        value = _v(value)
        out[member] = value if convert is None or value is UNKNOWN else convert(value)
    return out


def _tag_list(tags: Any) -> Any:
    return [{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, dict) else tags


def _each(mapping: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda items: [_pick(i, mapping) for i in items] if isinstance(items, list) else items


def _one(mapping: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda item: _pick(item, mapping) if isinstance(item, dict) else item


VARIANT = {
    "VariantName": "variantName",
    "ModelName": "modelName",
    "InstanceType": "instanceType",
    "InitialInstanceCount": "initialInstanceCount",
    "InitialVariantWeight": "initialVariantWeight",
    "VolumeSizeInGB": "volumeSizeInGb",
    "ModelDataDownloadTimeoutInSeconds": "modelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds": "containerStartupHealthCheckTimeoutInSeconds",
    "ServerlessConfig": (
        "serverlessConfig",
        _one({"MemorySizeInMB": "memorySizeInMb", "MaxConcurrency": "maxConcurrency"}),
    ),
}
DATA_CAPTURE = {
    "EnableCapture": "enableCapture",
    "InitialSamplingPercentage": "initialSamplingPercentage",
    "DestinationS3Uri": "destinationS3Uri",
    "KmsKeyId": "kmsKeyId",
    "CaptureOptions": ("captureOptions", _each({"CaptureMode": "captureMode"})),
    "CaptureContentTypeHeader": (
        "captureContentTypeHeader",
        _one({"CsvContentTypes": "csvContentTypes", "JsonContentTypes": "jsonContentTypes"}),
    ),
}
CAPACITY = {"Type": "type", "Value": "value"}
DEPLOYMENT = {
    "BlueGreenUpdatePolicy": (
        "blueGreenUpdatePolicy",
        _one(
            {
                "TrafficRoutingConfiguration": (
                    "trafficRoutingConfiguration",
                    _one(
                        {
                            "Type": "type",
                            "WaitIntervalInSeconds": "waitIntervalInSeconds",
                            "CanarySize": ("canarySize", _one(CAPACITY)),
                            "LinearStepSize": ("linearStepSize", _one(CAPACITY)),
                        }
                    ),
                ),
                "TerminationWaitInSeconds": "terminationWaitInSeconds",
                "MaximumExecutionTimeoutInSeconds": "maximumExecutionTimeoutInSeconds",
            }
        ),
    ),
    "AutoRollbackConfiguration": (
        "autoRollbackConfiguration",
        _one({"Alarms": ("alarms", _each({"AlarmName": "alarmName"}))}),
    ),
}
CONTAINER = {
    "ModelPackageName": "modelPackageName",
    "Image": "image",
    "ModelDataUrl": "modelDataUrl",
    "Environment": "environment",
    "ContainerHostname": "containerHostname",
    "Mode": "mode",
}

# type token -> [(service, operation, {ApiMember: wire spec})]
MAPPINGS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "aws:s3/bucket:Bucket": [("s3", "CreateBucket", {"Bucket": "bucket"})],
    "aws:kms/alias:Alias": [("kms", "CreateAlias", {"AliasName": "name", "TargetKeyId": "targetKeyId"})],
    "aws:ecr/repository:Repository": [
        (
            "ecr",
            "CreateRepository",
            {
                "repositoryName": "name",
                "imageTagMutability": "imageTagMutability",
                "imageScanningConfiguration": ("imageScanningConfiguration", _one({"scanOnPush": "scanOnPush"})),
                "encryptionConfiguration": (
                    "encryptionConfigurations",
                    lambda items: (
                        _pick(items[0], {"encryptionType": "encryptionType", "kmsKey": "kmsKey"})
                        if isinstance(items, list) and items
                        else None
                    ),
                ),
                "tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:iam/role:Role": [
        (
            "iam",
            "CreateRole",
            {
                "RoleName": "name",
                "Path": "path",
                "AssumeRolePolicyDocument": "assumeRolePolicy",
                "Description": "description",
                "MaxSessionDuration": "maxSessionDuration",
                "PermissionsBoundary": "permissionsBoundary",
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:iam/rolePolicy:RolePolicy": [
        ("iam", "PutRolePolicy", {"RoleName": "role", "PolicyName": "name", "PolicyDocument": "policy"})
    ],
    "aws:iam/policy:Policy": [
        (
            "iam",
            "CreatePolicy",
            {
                "PolicyName": "name",
                "Path": "path",
                "PolicyDocument": "policy",
                "Description": "description",
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:cloudwatch/logGroup:LogGroup": [
        ("logs", "CreateLogGroup", {"logGroupName": "name", "kmsKeyId": "kmsKeyId", "tags": "tags"}),
        ("logs", "PutRetentionPolicy", {"logGroupName": "name", "retentionInDays": "retentionInDays"}),
    ],
    "aws:sns/topic:Topic": [
        ("sns", "CreateTopic", {"Name": "name", "Tags": ("tags", _tag_list)}),
    ],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        (
            "cloudwatch",
            "PutMetricAlarm",
            {
                "AlarmName": "name",
                "AlarmDescription": "alarmDescription",
                "ActionsEnabled": "actionsEnabled",
                "OKActions": "okActions",
                "AlarmActions": "alarmActions",
                "InsufficientDataActions": "insufficientDataActions",
                "MetricName": "metricName",
                "Namespace": "namespace",
                "Statistic": "statistic",
                "ExtendedStatistic": "extendedStatistic",
                "Dimensions": (
                    "dimensions",
                    lambda d: [{"Name": k, "Value": v} for k, v in d.items()] if isinstance(d, dict) else d,
                ),
                "Period": "period",
                "Unit": "unit",
                "EvaluationPeriods": "evaluationPeriods",
                "DatapointsToAlarm": "datapointsToAlarm",
                "Threshold": "threshold",
                "ComparisonOperator": "comparisonOperator",
                "TreatMissingData": "treatMissingData",
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:cloudwatch/eventRule:EventRule": [
        (
            "events",
            "PutRule",
            {
                "Name": "name",
                "EventPattern": "eventPattern",
                "ScheduleExpression": "scheduleExpression",
                "Description": "description",
                "RoleArn": "roleArn",
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:cloudwatch/dashboard:Dashboard": [
        ("cloudwatch", "PutDashboard", {"DashboardName": "dashboardName", "DashboardBody": "dashboardBody"})
    ],
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": [
        (
            "sagemaker",
            "CreateModelPackageGroup",
            {
                "ModelPackageGroupName": "modelPackageGroupName",
                "ModelPackageGroupDescription": "modelPackageGroupDescription",
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:sagemaker/model:Model": [
        (
            "sagemaker",
            "CreateModel",
            {
                "ModelName": "name",
                "PrimaryContainer": ("primaryContainer", _one(CONTAINER)),
                "Containers": ("containers", _each(CONTAINER)),
                "ExecutionRoleArn": "executionRoleArn",
                "EnableNetworkIsolation": "enableNetworkIsolation",
                "VpcConfig": ("vpcConfig", _one({"Subnets": "subnets", "SecurityGroupIds": "securityGroupIds"})),
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": [
        (
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "name",
                "ProductionVariants": ("productionVariants", _each(VARIANT)),
                "KmsKeyId": "kmsKeyArn",
                "DataCaptureConfig": ("dataCaptureConfig", _one(DATA_CAPTURE)),
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    "aws:sagemaker/endpoint:Endpoint": [
        (
            "sagemaker",
            "CreateEndpoint",
            {
                "EndpointName": "name",
                "EndpointConfigName": "endpointConfigName",
                "DeploymentConfig": ("deploymentConfig", _one(DEPLOYMENT)),
                "Tags": ("tags", _tag_list),
            },
        )
    ],
    # The private network (infra/network.py); tags go in TagSpecifications, not mapped here.
    "aws:ec2/vpc:Vpc": [("ec2", "CreateVpc", {"CidrBlock": "cidrBlock"})],
    "aws:ec2/subnet:Subnet": [
        ("ec2", "CreateSubnet", {"VpcId": "vpcId", "CidrBlock": "cidrBlock", "AvailabilityZone": "availabilityZone"})
    ],
    "aws:ec2/securityGroup:SecurityGroup": [
        ("ec2", "CreateSecurityGroup", {"GroupName": "name", "Description": "description", "VpcId": "vpcId"})
    ],
    "aws:ec2/vpcEndpoint:VpcEndpoint": [
        (
            "ec2",
            "CreateVpcEndpoint",
            {
                "VpcId": "vpcId",
                "ServiceName": "serviceName",
                "VpcEndpointType": "vpcEndpointType",
                "PolicyDocument": "policy",
                "RouteTableIds": "routeTableIds",
                "SubnetIds": "subnetIds",
                "SecurityGroupIds": "securityGroupIds",
                "PrivateDnsEnabled": "privateDnsEnabled",
            },
        )
    ],
    "aws:ec2/flowLog:FlowLog": [
        (
            "ec2",
            "CreateFlowLogs",
            {
                "ResourceIds": ("vpcId", lambda vpc: [vpc]),
                "ResourceType": ("vpcId", lambda _: "VPC"),
                "TrafficType": "trafficType",
                "LogDestinationType": "logDestinationType",
                "LogDestination": "logDestination",
                "DeliverLogsPermissionArn": "iamRoleArn",
            },
        )
    ],
    "aws:appautoscaling/target:Target": [
        (
            "application-autoscaling",
            "RegisterScalableTarget",
            {
                "ServiceNamespace": "serviceNamespace",
                "ResourceId": "resourceId",
                "ScalableDimension": "scalableDimension",
                "MinCapacity": "minCapacity",
                "MaxCapacity": "maxCapacity",
                "RoleARN": "roleArn",
                "Tags": "tags",
            },
        )
    ],
    "aws:appautoscaling/policy:Policy": [
        (
            "application-autoscaling",
            "PutScalingPolicy",
            {
                "PolicyName": "name",
                "ServiceNamespace": "serviceNamespace",
                "ResourceId": "resourceId",
                "ScalableDimension": "scalableDimension",
                "PolicyType": "policyType",
                "TargetTrackingScalingPolicyConfiguration": (
                    "targetTrackingScalingPolicyConfiguration",
                    _one(
                        {
                            "TargetValue": "targetValue",
                            "PredefinedMetricSpecification": (
                                "predefinedMetricSpecification",
                                _one(
                                    {
                                        "PredefinedMetricType": "predefinedMetricType",
                                        "ResourceLabel": "resourceLabel",
                                    }
                                ),
                            ),
                            "ScaleOutCooldown": "scaleOutCooldown",
                            "ScaleInCooldown": "scaleInCooldown",
                            "DisableScaleIn": "disableScaleIn",
                        }
                    ),
                ),
            },
        )
    ],
}


def _label(record: dict[str, Any]) -> str:
    return f"{record.get('name', '')} ({record.get('type', '')})"


def requests_of(resources: Iterable[dict[str, Any]]) -> list[Request]:
    """The API requests the resource records imply (records of types we cannot map are skipped)."""
    out = []
    for record in resources:
        for service, operation, mapping in MAPPINGS.get(record.get("type", ""), ()):
            props = dict(record.get("props") or {})
            name_spec = mapping.get(NAME_MEMBERS.get((service, operation), ""))
            if isinstance(name_spec, str) and props.get(name_spec) is None:
                props[name_spec] = f"{record.get('name', '')}{AUTONAME_SUFFIX}"
            out.append(Request(service, operation, _pick(props, mapping), _label(record)))
    return out


# --- the checks ------------------------------------------------------------------------------------


def check_resources(resources: Iterable[dict[str, Any]]) -> list[Finding]:
    """Every model problem and documented-rule violation in a preview graph or stack export."""
    records = list(resources)
    by_label = {_label(r): r for r in records}
    requests = requests_of(records)
    found = [
        ("BOTOCORE-MODEL", r.resource, f"{r.resource}: {p.message}")
        for r in requests
        for p in validate_request(r.service, r.operation, r.params)
    ]
    found += [(v.rule, v.resource, v.message) for v in check_requests(requests)]
    findings = []
    for rule, label, message in found:
        record = by_label.get(label, {})
        findings.append(
            Finding(rule, label, message, record.get("urn", ""), record.get("type", ""), record.get("name", ""))
        )
    return findings


def check_preview(preview: Preview) -> list[Finding]:
    """`check_resources` over an `infra.preview.Preview`."""
    return check_resources(preview.resources)


def require_clean(stack: str, resources: Iterable[dict[str, Any]]) -> None:
    """Raise PreflightError listing every finding, or return quietly."""
    findings = check_resources(resources)
    if findings:
        raise PreflightError(stack, findings)
