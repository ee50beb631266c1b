"""The documented AWS rules that botocore's models do not carry, in one table.

botocore knows each member on its own (`kernel.aws_model`); these rules tie members together
(an instance type and a volume key, a serverless variant and its model's network settings) or
come from AWS's documentation and the Pulumi provider's source. Each row has an ID, a one-line
rule, the page it comes from and a check over the API requests a stack implies
(`infra.preflight` builds them from the preview graph). `kernel.stack_config` refuses what can be
decided from a stack's config alone, citing the same IDs and limits from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from kernel import names
from kernel.instances import INSTANCE_TYPE, has_instance_storage

# --- limits (each with its source) -----------------------------------------------------------

# A canary may be at most half of the green fleet; a linear step 10-50 % of it.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
CANARY_MAX_PERCENT = 50
LINEAR_STEP_PERCENT = (10, 50)

# The provider waits a fixed 60 minutes for an endpoint to be InService after CreateEndpoint or
# UpdateEndpoint (terraform-provider-aws internal/service/sagemaker/endpoint.go,
# waitEndpointInService: `timeout = 60 * time.Minute`; pulumi-aws bridges it and the resource has
# no customTimeouts for it). A deployment that may run longer makes `pulumi up` fail while
# SageMaker carries on.
PROVIDER_ENDPOINT_WAIT_SECONDS = 3600
PROVIDER_WAITER_SOURCE = (
    "https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/sagemaker/endpoint.go"
    " (waitEndpointInService, 60 min)"
)


GUARDRAIL_EXCLUSIONS_URL = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"

URLS = {
    "INSTANCE-STORAGE": "https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html",
    "SERVERLESS-EXCLUSIONS": "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html",
    "BLUEGREEN-CANARY": "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html",
    "BLUEGREEN-LINEAR": "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-linear.html",
    "BLUEGREEN-WAITS": "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html",
    "NAME-LENGTHS": "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html",
    # AWS APIs speak JSON, which has no NaN or infinity; config values reach requests, alarms and budgets.
    "FINITE-NUMBERS": "https://www.rfc-editor.org/rfc/rfc8259#section-6",
    "BOTOCORE-MODEL": "https://github.com/boto/botocore/tree/develop/botocore/data",
}


# --- what a check sees and says ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One API request a stack implies: what AWS would receive to create `resource`."""

    service: str
    operation: str
    params: dict[str, Any]
    resource: str = ""  # the Pulumi resource it comes from (type and name), for messages


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str
    value: Any
    allowed: str
    resource: str = ""
    source: str = ""

    @property
    def message(self) -> str:
        where = f"{self.resource}: " if self.resource else ""
        source = self.source or URLS.get(self.rule, "")
        return (
            f"{where}{self.path}: {self.value!r} is not valid; {self.allowed} (AWS rule {self.rule}, source: {source})"
        )

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Rule:
    id: str
    rule: str
    url: str
    check: Callable[[Sequence[Request]], Iterable[Violation]] = field(repr=False)


# --- helpers ------------------------------------------------------------------------------------


def _of(requests: Sequence[Request], operation: str) -> list[Request]:
    return [r for r in requests if r.operation == operation]


def _by_name(requests: Sequence[Request], operation: str, member: str) -> dict[str, Request]:
    return {str(r.params.get(member)): r for r in _of(requests, operation)}


def _variants(config: Request) -> list[dict[str, Any]]:
    return [v for v in config.params.get("ProductionVariants") or [] if isinstance(v, dict)]


def _is_instance_type(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(INSTANCE_TYPE.match(value))


def rollout_seconds(routing: dict[str, Any], termination_wait: int, fleet: int | None = None) -> int:
    """Least time a blue/green deployment bakes: each traffic step's wait, then the termination wait.

    A canary bakes once; a linear rollout once per step (100 / step %, or fleet / step instances).
    """
    wait = int(routing.get("WaitIntervalInSeconds") or 0)
    steps = 1
    size = routing.get("LinearStepSize") or {}
    if routing.get("Type") == "LINEAR" and size.get("Value"):
        whole = 100 if size.get("Type") == "CAPACITY_PERCENT" else (fleet or int(size["Value"]))
        steps = math.ceil(whole / max(int(size["Value"]), 1))
    return steps * wait + int(termination_wait or 0)


# --- the checks -----------------------------------------------------------------------------------


def _instance_storage(requests: Sequence[Request]) -> Iterable[Violation]:
    rule = "INSTANCE-STORAGE"
    for r in _of(requests, "CreateTrainingJob"):
        rc = r.params.get("ResourceConfig") or {}
        itype = rc.get("InstanceType")
        if rc.get("VolumeKmsKeyId") and _is_instance_type(itype) and has_instance_storage(itype):
            yield Violation(
                rule,
                "ResourceConfig.VolumeKmsKeyId",
                rc["VolumeKmsKeyId"],
                f"{itype} has local NVMe storage and takes no volume KMS key; leave it out "
                "(OutputDataConfig keeps its key)",
                r.resource,
            )
    for r in _of(requests, "CreateEndpointConfig"):
        if not r.params.get("KmsKeyId"):
            continue
        types = [v.get("InstanceType") for v in _variants(r)]
        local = [t for t in types if _is_instance_type(t) and has_instance_storage(t)]
        if local:
            yield Violation(
                rule,
                "KmsKeyId",
                r.params["KmsKeyId"],
                f"variant instance type {', '.join(local)} has local NVMe storage and takes no volume KMS key",
                r.resource,
            )


def _serverless_exclusions(requests: Sequence[Request]) -> Iterable[Violation]:
    rule = "SERVERLESS-EXCLUSIONS"
    models = _by_name(requests, "CreateModel", "ModelName")
    endpoints_by_config: dict[str, list[Request]] = {}
    for e in _of(requests, "CreateEndpoint"):
        endpoints_by_config.setdefault(str(e.params.get("EndpointConfigName")), []).append(e)
    for config in _of(requests, "CreateEndpointConfig"):
        serverless = [v for v in _variants(config) if v.get("ServerlessConfig")]
        if not serverless:
            continue
        capture = config.params.get("DataCaptureConfig")
        if isinstance(capture, dict) and capture.get("EnableCapture", True):
            yield Violation(
                rule, "DataCaptureConfig", capture, "a serverless endpoint cannot capture data", config.resource
            )
        for v in serverless:
            model = models.get(str(v.get("ModelName")))
            if model is None:
                continue
            if model.params.get("EnableNetworkIsolation"):
                yield Violation(
                    rule,
                    "EnableNetworkIsolation",
                    True,
                    f"model {v.get('ModelName')} serves a serverless variant, which supports no network isolation",
                    model.resource,
                )
            if model.params.get("VpcConfig"):
                yield Violation(
                    rule,
                    "VpcConfig",
                    model.params["VpcConfig"],
                    f"model {v.get('ModelName')} serves a serverless variant, which cannot run in a VPC",
                    model.resource,
                )
        for endpoint in endpoints_by_config.get(str(config.params.get("EndpointConfigName")), []):
            if (endpoint.params.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy"):
                yield Violation(
                    rule,
                    "DeploymentConfig.BlueGreenUpdatePolicy",
                    "set",
                    "serverless endpoints support no blue/green traffic shifting or rollback alarms",
                    endpoint.resource,
                    f"{URLS[rule]}, {GUARDRAIL_EXCLUSIONS_URL}",
                )


def _routings(requests: Sequence[Request]) -> Iterable[tuple[Request, dict[str, Any], dict[str, Any]]]:
    """(endpoint request, its blue/green policy, its traffic routing) for each endpoint that has one."""
    for e in _of(requests, "CreateEndpoint"):
        policy = (e.params.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy") or {}
        routing = policy.get("TrafficRoutingConfiguration") or {}
        if routing:
            yield e, policy, routing


def _fleet_size(requests: Sequence[Request], endpoint: Request) -> int | None:
    config = _by_name(requests, "CreateEndpointConfig", "EndpointConfigName").get(
        str(endpoint.params.get("EndpointConfigName"))
    )
    if config is None:
        return None
    counts = [v.get("InitialInstanceCount") for v in _variants(config)]
    return int(sum(c for c in counts if isinstance(c, (int, float)))) or None


def _percent_of_fleet(size: dict[str, Any], fleet: int | None) -> float | None:
    if size.get("Type") == "CAPACITY_PERCENT":
        return float(size.get("Value", 0))
    if size.get("Type") == "INSTANCE_COUNT" and fleet:
        return 100.0 * float(size.get("Value", 0)) / fleet
    return None


BG = "DeploymentConfig.BlueGreenUpdatePolicy"


def _canary(requests: Sequence[Request]) -> Iterable[Violation]:
    for e, _, routing in _routings(requests):
        size = routing.get("CanarySize") or {}
        percent = _percent_of_fleet(size, _fleet_size(requests, e))
        if routing.get("Type") == "CANARY" and percent is not None and percent > CANARY_MAX_PERCENT:
            yield Violation(
                "BLUEGREEN-CANARY",
                f"{BG}.TrafficRoutingConfiguration.CanarySize",
                size,
                f"a canary is at most {CANARY_MAX_PERCENT}% of the fleet (this is {percent:g}%)",
                e.resource,
            )


def _linear(requests: Sequence[Request]) -> Iterable[Violation]:
    low, high = LINEAR_STEP_PERCENT
    for e, _, routing in _routings(requests):
        size = routing.get("LinearStepSize") or {}
        percent = _percent_of_fleet(size, _fleet_size(requests, e))
        if routing.get("Type") == "LINEAR" and percent is not None and not low <= percent <= high:
            yield Violation(
                "BLUEGREEN-LINEAR",
                f"{BG}.TrafficRoutingConfiguration.LinearStepSize",
                size,
                f"each linear step is {low}-{high}% of the fleet (this is {percent:g}%)",
                e.resource,
            )


def _waits(requests: Sequence[Request]) -> Iterable[Violation]:
    rule = "BLUEGREEN-WAITS"
    for e, policy, routing in _routings(requests):
        baking = rollout_seconds(routing, policy.get("TerminationWaitInSeconds") or 0, _fleet_size(requests, e))
        timeout = policy.get("MaximumExecutionTimeoutInSeconds")
        if isinstance(timeout, (int, float)) and timeout > PROVIDER_ENDPOINT_WAIT_SECONDS:
            yield Violation(
                rule,
                f"{BG}.MaximumExecutionTimeoutInSeconds",
                timeout,
                f"the provider stops waiting after {PROVIDER_ENDPOINT_WAIT_SECONDS} s while SageMaker carries on: "
                f"at most {PROVIDER_ENDPOINT_WAIT_SECONDS}",
                e.resource,
                PROVIDER_WAITER_SOURCE,
            )
        if baking >= PROVIDER_ENDPOINT_WAIT_SECONDS:
            yield Violation(
                rule,
                f"{BG}.TrafficRoutingConfiguration.WaitIntervalInSeconds",
                routing.get("WaitIntervalInSeconds"),
                f"the rollout bakes {baking} s (steps x wait + termination wait), beyond the provider's "
                f"{PROVIDER_ENDPOINT_WAIT_SECONDS} s wait",
                e.resource,
                PROVIDER_WAITER_SOURCE,
            )
        if isinstance(timeout, (int, float)) and baking > timeout:
            yield Violation(
                rule,
                f"{BG}.MaximumExecutionTimeoutInSeconds",
                timeout,
                f"shorter than the rollout's own baking time ({baking} s): SageMaker would time out and roll back",
                e.resource,
            )


def _names(requests: Sequence[Request]) -> Iterable[Violation]:
    for r in requests:
        for path, name, constraint, source in names.request_name_problems(r.service, r.operation, r.params):
            yield Violation("NAME-LENGTHS", path, name, constraint, r.resource, source)


RULES: tuple[Rule, ...] = (
    Rule(
        "INSTANCE-STORAGE",
        "Instance types with local NVMe storage take no volume KMS key "
        "(training ResourceConfig.VolumeKmsKeyId, endpoint config KmsKeyId).",
        URLS["INSTANCE-STORAGE"],
        _instance_storage,
    ),
    Rule(
        "SERVERLESS-EXCLUSIONS",
        "A serverless variant's model has no VPC and no network isolation; no data capture; no blue/green deployment.",
        URLS["SERVERLESS-EXCLUSIONS"],
        _serverless_exclusions,
    ),
    Rule(
        "BLUEGREEN-CANARY",
        f"A blue/green canary is at most {CANARY_MAX_PERCENT}% of the fleet.",
        URLS["BLUEGREEN-CANARY"],
        _canary,
    ),
    Rule(
        "BLUEGREEN-LINEAR",
        f"Each blue/green linear step is {LINEAR_STEP_PERCENT[0]}-{LINEAR_STEP_PERCENT[1]}% of the fleet.",
        URLS["BLUEGREEN-LINEAR"],
        _linear,
    ),
    Rule(
        "BLUEGREEN-WAITS",
        f"A deployment's baking time and maximum execution timeout fit within the provider's "
        f"{PROVIDER_ENDPOINT_WAIT_SECONDS} s endpoint waiter, and the timeout covers the baking time.",
        URLS["BLUEGREEN-WAITS"],
        _waits,
    ),
    Rule(
        "NAME-LENGTHS",
        "Every physical name, once the program's prefixes and suffixes are added, fits its service: S3 buckets "
        "3-63 lowercase, SageMaker names 63 `[a-zA-Z0-9](-*[a-zA-Z0-9])*`, IAM roles 64, SNS topics 256, and the rest "
        "as botocore's models say.",
        URLS["NAME-LENGTHS"],
        _names,
    ),
)
RULES_BY_ID = {r.id: r for r in RULES}


def check_requests(requests: Sequence[Request]) -> list[Violation]:
    """Every documented rule over the requests a stack implies."""
    return [v for rule in RULES for v in rule.check(requests)]
