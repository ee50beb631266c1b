"""Physical names: the shape of every name the program derives from a stack and its models, and
whether AWS accepts it.

A stack name and a model name feed many resources (`mlops-<stack>-access-logs-<account>`,
`mlops-<stack>-<model>-<hash>`, `<model>-<stack>`...), each with its own service's limits. The
templates below mirror the components in infra/ (a test holds them to the preview graph), so a
stack or model name is refused before any resource is declared when one derived name would not
fit (AWS rule NAME-LENGTHS). Service limits are read from botocore's models (`kernel.aws_model`);
where a model carries none (S3 bucket names, SNS topic names) the documented rule is encoded here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from kernel.aws_model import validate_member

PROJECT = "mlops"
ACCOUNT_ID_EXAMPLE = "123456789012"  # every AWS account id has 12 digits: names built with it have the real length
CONTENT_HASH_LENGTH = 8  # infra.common.content_hash default, used in model and endpoint config names
BUCKET_PURPOSES = ("access-logs", "data", "artifacts", "capture")

# Lowercase letters and digits in hyphen-separated words: valid in every name a stack or model
# feeds (S3 and ECR take no capitals; SageMaker no `_` or `.`; none may end in `-`).
NAME_WORDS = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
NAME_WORDS_ALLOWED = "lowercase letters, digits and single hyphens, starting with a letter and not ending in a hyphen"

S3_URL = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"
SNS_URL = "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html"
S3_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
SNS_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")

# Which member of which request carries a resource's physical name.
NAME_MEMBERS: dict[tuple[str, str], str] = {
    ("s3", "CreateBucket"): "Bucket",
    ("kms", "CreateAlias"): "AliasName",
    ("ecr", "CreateRepository"): "repositoryName",
    ("iam", "CreateRole"): "RoleName",
    ("iam", "CreatePolicy"): "PolicyName",
    ("iam", "PutRolePolicy"): "PolicyName",
    ("logs", "CreateLogGroup"): "logGroupName",
    ("sns", "CreateTopic"): "Name",
    ("cloudwatch", "PutDashboard"): "DashboardName",
    ("cloudwatch", "PutMetricAlarm"): "AlarmName",
    ("events", "PutRule"): "Name",
    ("budgets", "CreateBudget"): "Budget.BudgetName",
    ("sagemaker", "CreateModelPackageGroup"): "ModelPackageGroupName",
    ("sagemaker", "CreateModel"): "ModelName",
    ("sagemaker", "CreateEndpointConfig"): "EndpointConfigName",
    ("sagemaker", "CreateEndpoint"): "EndpointName",
    ("sagemaker", "CreateTrainingJob"): "TrainingJobName",
    ("sagemaker", "CreateHyperParameterTuningJob"): "HyperParameterTuningJobName",
    ("application-autoscaling", "PutScalingPolicy"): "PolicyName",
}


@dataclass(frozen=True)
class DerivedName:
    """One physical name the program derives, and the request member that carries it."""

    resource: str  # e.g. "S3 bucket (access-logs)"
    service: str
    operation: str
    name: str
    model: str = ""  # the model whose name it carries, if any
    unique_suffix: int = 0  # characters the provider appends to a name prefix (the example name has them)


def physical(stack: str, *parts: str) -> str:
    """`mlops-<stack>-<parts...>`: the prefix infra.common.physical_name gives every resource."""
    return "-".join([PROJECT, stack, *parts])


# terraform-plugin-sdk's id.PrefixedUniqueId (what a `name_prefix` becomes): a 26-character suffix.
# https://github.com/hashicorp/terraform-plugin-sdk/blob/main/helper/id/id.go
PROVIDER_UNIQUE_SUFFIX_LENGTH = 26


def endpoint_name(stack: str, model: str, mode: str = "instance") -> str:
    """The endpoint's name; a serverless endpoint carries its mode. AWS rule ENDPOINT-MODE-SWITCH.

    UpdateEndpoint cannot move an endpoint from instances to serverless, so a change of serving
    mode must create another endpoint. Under one fixed name Pulumi would have to delete the live
    endpoint before creating its successor (an outage); with the mode in the name the new
    endpoint is created first, the stack output `endpoints` and the alarms follow it, and only
    then is the old one deleted. Instance endpoints keep the plain name.
    """
    return physical(stack, model) if mode == "instance" else physical(stack, model, mode)


ALARM_KINDS = ("5xx-errors", "latency-p99", "drift")


def endpoint_alarm_names(stack: str, model: str, mode: str = "instance") -> tuple[str, str, str]:
    """The endpoint's 5xx, latency and drift alarms: (errors, latency, drift)."""
    base = endpoint_name(stack, model, mode)
    errors, latency, drift = (f"{base}-{kind}" for kind in ALARM_KINDS)
    return errors, latency, drift


def endpoint_config_prefix(stack: str, model: str) -> str:
    """`mlops-<stack>-<model>-`: the provider appends 26 unique characters (63 in all, so at most 37 here)."""
    return physical(stack, model) + "-"


def derived_names(stack: str, models: tuple[str, ...] | list[str], mode: str = "instance") -> list[DerivedName]:
    """Every physical name the program derives from `stack`, `models` and the serving mode."""
    hash_ = "0" * CONTENT_HASH_LENGTH
    out = [
        *(
            DerivedName(f"S3 bucket ({p})", "s3", "CreateBucket", f"{physical(stack, p)}-{ACCOUNT_ID_EXAMPLE}")
            for p in BUCKET_PURPOSES
        ),
        DerivedName("KMS alias", "kms", "CreateAlias", f"alias/{physical(stack)}"),
        DerivedName("ECR repository", "ecr", "CreateRepository", physical(stack)),
        DerivedName("IAM role (execution)", "iam", "CreateRole", physical(stack, "sagemaker-execution")),
        DerivedName("IAM role (deployer)", "iam", "CreateRole", physical(stack, "github-deployer")),
        DerivedName("log group", "logs", "CreateLogGroup", f"/{PROJECT}/{stack}/pipeline"),
        DerivedName("SNS topic", "sns", "CreateTopic", physical(stack, "alerts")),
        DerivedName("dashboard", "cloudwatch", "PutDashboard", physical(stack)),
        DerivedName("EventBridge rule", "events", "PutRule", physical(stack, "training-failed")),
        DerivedName("alarm (training failed)", "cloudwatch", "PutMetricAlarm", physical(stack, "training-failed")),
        DerivedName("budget", "budgets", "CreateBudget", physical(stack, "monthly")),
    ]
    for model in models:
        out += [
            DerivedName(
                f"model package group ({model})", "sagemaker", "CreateModelPackageGroup", f"{model}-{stack}", model
            ),
            DerivedName(f"SageMaker model ({model})", "sagemaker", "CreateModel", physical(stack, model, hash_), model),
            DerivedName(
                f"endpoint config ({model})",
                "sagemaker",
                "CreateEndpointConfig",
                endpoint_config_prefix(stack, model) + "0" * PROVIDER_UNIQUE_SUFFIX_LENGTH,
                model,
                unique_suffix=PROVIDER_UNIQUE_SUFFIX_LENGTH,
            ),
            DerivedName(f"endpoint ({model})", "sagemaker", "CreateEndpoint", endpoint_name(stack, model, mode), model),
            *(
                DerivedName(f"alarm ({model} {kind})", "cloudwatch", "PutMetricAlarm", alarm, model)
                for kind, alarm in zip(ALARM_KINDS, endpoint_alarm_names(stack, model, mode), strict=True)
            ),
            DerivedName(
                f"scaling policy ({model})",
                "application-autoscaling",
                "PutScalingPolicy",
                physical(stack, model, "invocations-per-instance"),
                model,
            ),
        ]
    return out


# --- documented name rules the models do not carry ---------------------------------------------


def s3_bucket_name_problems(name: str) -> list[str]:
    """Why S3 would refuse `name` as a general purpose bucket name (empty when valid)."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"S3 bucket names are 3-63 characters (this one has {len(name)})")
    if not S3_BUCKET_NAME.fullmatch(name):
        problems.append("lowercase letters, digits, hyphens and periods, starting and ending with a letter or digit")
    if ".." in name:
        problems.append("no two adjacent periods")
    try:
        ipaddress.IPv4Address(name)
        problems.append("not formatted as an IP address")
    except ValueError:
        pass
    if name.startswith(S3_RESERVED_PREFIXES) or name.endswith(S3_RESERVED_SUFFIXES):
        problems.append(
            f"no reserved prefix ({', '.join(S3_RESERVED_PREFIXES)}) or suffix ({', '.join(S3_RESERVED_SUFFIXES)})"
        )
    return problems


def sns_topic_name_problems(name: str) -> list[str]:
    if SNS_TOPIC_NAME.fullmatch(name.removesuffix(".fifo")):
        return []
    return ["SNS topic names are 1-256 letters, digits, hyphens and underscores (a FIFO topic ends in .fifo)"]


DOCUMENTED = {
    ("s3", "CreateBucket"): (s3_bucket_name_problems, S3_URL),
    ("sns", "CreateTopic"): (sns_topic_name_problems, SNS_URL),
}


def name_problems(service: str, operation: str, name: str) -> list[tuple[str, str]]:
    """(constraint, source) for each rule `name` breaks as the physical name in this request."""
    member = NAME_MEMBERS[(service, operation)]
    out = [(p.constraint, p.source) for p in validate_member(service, operation, member, name)]
    documented = DOCUMENTED.get((service, operation))
    if documented:
        check, url = documented
        out += [(problem, url) for problem in check(name)]
    return out


def request_name_problems(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(path, name, constraint, source) for the physical name a request carries, when it has one.

    Only the documented rules: the preflight checks the model's own limits on the whole request.
    """
    documented = DOCUMENTED.get((service, operation))
    member = NAME_MEMBERS.get((service, operation))
    if not documented or not member:
        return []
    name = params.get(member)
    if not isinstance(name, str):  # UNKNOWN (a value known only after deployment) is not a str
        return []
    check, url = documented
    return [(member, name, problem, url) for problem in check(name)]


@dataclass(frozen=True)
class NameProblem:
    derived: DerivedName
    constraint: str
    source: str

    @property
    def allowed(self) -> str:
        """The `allowed` half of a config message: which name it gives, and the rule it breaks."""
        d = self.derived
        return f"it gives the {d.resource} name {d.name!r} ({len(d.name)} characters): {self.constraint}"


def derived_name_problems(stack: str, models: tuple[str, ...] | list[str]) -> list[NameProblem]:
    """Each derived name AWS would refuse, with the limit it breaks and that limit's source.

    Both serving modes are checked: a name that fits only one would break the day the stack
    switches (the serverless endpoint's name is longer).
    """
    unique = {d.name: d for mode in ("instance", "serverless") for d in derived_names(stack, models, mode)}
    return [
        NameProblem(derived, constraint, source)
        for derived in unique.values()
        for constraint, source in name_problems(derived.service, derived.operation, derived.name)
    ]
