"""`mlops verify`: does each endpoint run what the stack declares? Read from SageMaker, not from Pulumi.

A blue/green update that trips a rollback alarm (or fails to start) returns the endpoint to
InService on its OLD endpoint config, and the provider reports the update as a success (AWS
rule ENDPOINT-ROLLBACK-REPORTED-SUCCESS; open upstream bug, see docs/aws-rules.md). So after
`pulumi up`, for every model the stack deploys (outputs `endpoints` + `approvedPackages`), this
follows the chain SageMaker itself serves from: DescribeEndpoint (status, config, failure
reason, pending deployment) -> DescribeEndpointConfig (each variant's model) -> DescribeModel
(the container's model package), and fails unless the endpoint is InService on the declared
package. Promotion's "live in" gate asks the same question (`serves`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ci.errors import MlopsError
from ci.progress import QUIET, Progress
from kernel.names import endpoint_name

RULE = "ENDPOINT-ROLLBACK-REPORTED-SUCCESS"
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack")
DEFAULT_WAIT_SECONDS = 1800.0


class VerifyFailed(MlopsError):
    """An endpoint does not run what its stack declares (exit 1: the deployment failed)."""

    exit_code = 1


@dataclass
class EndpointState:
    """What one endpoint runs, read from SageMaker, and whether it is what the stack declared."""

    model: str
    endpoint: str
    declared: str
    status: str = ""
    configName: str = ""
    packages: list[str] = field(default_factory=list)
    failureReason: str = ""
    pendingDeployment: bool = False
    rollbackAlarms: list[str] = field(default_factory=list)  # LastDeploymentConfig's auto-rollback alarms
    problem: str = ""

    @property
    def settling(self) -> bool:
        return self.status in TRANSITIONAL or self.pendingDeployment

    @property
    def ok(self) -> bool:
        return not self.problem and not self.settling

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def read_endpoint(sm, model: str, endpoint: str, declared: str) -> EndpointState:
    """Follow endpoint -> config -> models -> packages; set `problem` when it is not the declared package."""
    state = EndpointState(model, endpoint, declared)
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as err:
        if "Could not find" in str(err) or err.response.get("Error", {}).get("Code") == "ValidationException":
            state.problem = f"endpoint {endpoint} does not exist, but the stack deploys {declared} to it"
            return state
        raise
    state.status = described["EndpointStatus"]
    state.configName = described["EndpointConfigName"]
    state.failureReason = described.get("FailureReason", "") or ""
    state.pendingDeployment = bool(described.get("PendingDeploymentSummary"))
    rollback = (described.get("LastDeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
    state.rollbackAlarms = [alarm["AlarmName"] for alarm in rollback.get("Alarms") or []]
    reason = f" (FailureReason: {state.failureReason})" if state.failureReason else ""
    try:
        state.packages = serving_packages(sm, state.configName)
    except ClientError as err:
        # The upstream bug's second half: believing the update took, the provider deletes the
        # config the endpoint still runs on, and the next update fails on it.
        state.problem = (
            f"endpoint {endpoint} is {state.status} on endpoint config {state.configName}, which can no longer be "
            f"read ({err.response.get('Error', {}).get('Message', err)}): a rolled-back update whose old config was "
            f"deleted (AWS rule {RULE}); the stack declares {declared}{reason}"
        )
        return state
    if state.status in ("Failed", "UpdateRollbackFailed", "OutOfService", "Deleting"):
        state.problem = f"endpoint {endpoint} is {state.status}{reason}"
    elif not state.settling and state.packages != [declared]:
        state.problem = (
            f"endpoint {endpoint} is {state.status} but serves {', '.join(state.packages) or 'no model package'} "
            f"(endpoint config {state.configName}), not {declared} as the stack declares{reason}: the last "
            f"deployment did not take. SageMaker returns a failed or alarm-stopped update to the old config and "
            f"the provider reports success (AWS rule {RULE}); look at the rollout's alarms"
            + (f" ({', '.join(state.rollbackAlarms)})" if state.rollbackAlarms else "")
            + " and the endpoint's events, then run `pulumi up` again or roll the stack file back"
        )
    return state


def serving_packages(sm, config_name: str) -> list[str]:
    """The model packages behind every production variant of an endpoint config, in variant order."""
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    packages = []
    for variant in config.get("ProductionVariants") or []:
        model = sm.describe_model(ModelName=variant["ModelName"])
        containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers") or []
        for container in containers:
            package = container.get("ModelPackageName") or f"(no package: image {container.get('Image', '?')})"
            if package not in packages:
                packages.append(package)
    return packages


def declared_endpoints(outputs) -> dict[str, tuple[str, str]]:
    """model -> (endpoint, package) for every model the stack deploys."""
    return {
        model: (outputs.endpoints.get(model) or endpoint_name(outputs.stackName, model), package)
        for model, package in sorted(outputs.approvedPackages.items())
        if package
    }


def verify(
    session,
    outputs,
    *,
    model: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    poll_seconds: float = 30.0,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """Check every deployed model (or one); wait while an endpoint is still settling; raise VerifyFailed."""
    sm = session.client("sagemaker")
    targets = declared_endpoints(outputs)
    if model is not None:
        targets = {m: t for m, t in targets.items() if m == model}
    started = time.monotonic()
    states: list[EndpointState] = []
    for name, (endpoint, package) in targets.items():
        state = read_endpoint(sm, name, endpoint, package)
        while state.settling and time.monotonic() - started < wait_seconds:
            progress.info(f"{endpoint} is {state.status}; waiting")
            time.sleep(poll_seconds)
            state = read_endpoint(sm, name, endpoint, package)
        if state.settling and not state.problem:
            state.problem = (
                f"endpoint {endpoint} is still {state.status} after {wait_seconds:.0f} s "
                f"(endpoint config {state.configName}); the deployment has not finished"
            )
        progress.step(f"{endpoint}: " + ("ok, serves " + package if state.ok else state.problem))
        states.append(state)
    result = {
        "stack": outputs.stackName,
        "ok": all(s.ok for s in states),
        "endpoints": [s.to_dict() for s in states],
    }
    failed = [s for s in states if not s.ok]
    if failed:
        raise VerifyFailed("; ".join(s.problem for s in failed), details=result)
    return result


def serves(session, outputs, model: str, package_arn: str) -> bool:
    """Whether the stack's endpoint for `model` is InService on exactly `package_arn`, as SageMaker says."""
    endpoint = outputs.endpoints.get(model) or endpoint_name(outputs.stackName, model)
    state = read_endpoint(session.client("sagemaker"), model, endpoint, package_arn)
    return state.ok
