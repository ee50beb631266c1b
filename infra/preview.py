"""Run the real Pulumi program offline, under Pulumi's mocks, and return what it declares.

No Pulumi CLI and no cloud account are needed: the SDK's mock monitor stands in for the
engine, and `AwsMocks` answers every registration with realistic ids and ARNs (inputs built
from an `arn` or `id` are silently dropped when a mock returns none). Every registration is
recorded as a resource record: type, name, URN, wire-form properties, parent, provider and
dependencies — the same shape the policies read from CrossGuard and from stack exports.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func

from infra.common import content_hash
from kernel.names import PROVIDER_UNIQUE_SUFFIX_LENGTH
from kernel.stack_config import load_stack_config, read_raw_config, to_pulumi_config
from kernel.wire import plain  # secrets unwrapped as the policy records unwrap them

PROJECT = "mlops"
PROGRAM = Path(__file__).resolve().parent / "__main__.py"
ACCOUNT_ID = "123456789012"  # moto's default account too, so preview names match the emulator's


@dataclass
class Preview:
    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    seconds: float = 0.0
    config: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "project": PROJECT, "resources": self.resources, "outputs": self.outputs}

    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token]

    def by_name(self, name: str) -> dict[str, Any]:
        matches = [r for r in self.resources if r["name"] == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


# --- mocks ---------------------------------------------------------------------------------


def _arn(service: str, region: str, resource: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _prefixed(prefix: str | None, logical_name: str) -> str | None:
    """What the provider makes of a `name_prefix`: the prefix and 26 unique characters."""
    if not prefix:
        return None
    return prefix + content_hash(logical_name, length=PROVIDER_UNIQUE_SUFFIX_LENGTH)


# type token -> (id prefix, ARN resource type) for the network's EC2 resources.
# Types whose mock ARN is `arn:aws:<service>:<region>:<account>:<resource>` and nothing else, as
# "<service>:<resource>".
ARN_RESOURCES = {
    "aws:kms/alias:Alias": "kms:{name}",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "sagemaker:model-package-group/{name}",
    "aws:sagemaker/model:Model": "sagemaker:model/{name}",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": "sagemaker:endpoint-config/{name}",
    "aws:sagemaker/endpoint:Endpoint": "sagemaker:endpoint/{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "cloudwatch:alarm:{name}",
    "aws:cloudwatch/eventRule:EventRule": "events:rule/{name}",
    "aws:cloudwatch/logGroup:LogGroup": "logs:log-group:{name}",
    "aws:appautoscaling/policy:Policy": "autoscaling:scalingPolicy:{name}",
}
EC2_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc", "route-table-association"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr", "security-group-rule"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("sgr", "security-group-rule"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
}
AVAILABILITY_ZONE_LETTERS = "abc"


class AwsMocks(pulumi_mocks.Mocks):
    """Answers like AWS would: the physical name as id, ARNs in each service's format."""

    def __init__(self, region: str):
        self.region = region
        self.default_tags: dict[str, dict[str, str]] = {}  # provider id -> its default_tags

    def _tags_all(self, args: pulumi_mocks.MockResourceArgs, tags: Any) -> dict[str, str] | None:
        """What AWS reports as `tags_all`: the provider's default tags under the resource's own.

        Only resources whose pulumi-aws class has `tags_all` take default tags (the provider's docs).
        """
        module, _, cls = args.typ.removeprefix("aws:").partition(":")
        package = module.split("/")[0]
        resource_class = getattr(aws if package == "index" else getattr(aws, package, None), cls, None)
        if not hasattr(resource_class, "tags_all"):
            return None
        defaults = self.default_tags.get((args.provider or "").rsplit("::", 1)[-1], {})
        return {**defaults, **(tags if isinstance(tags, dict) else {})}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        token, r = args.typ, self.region
        name = (
            inputs.get("name")
            or _prefixed(inputs.get("namePrefix"), args.name)
            or inputs.get("bucket")
            or inputs.get("modelPackageGroupName")
            or inputs.get("dashboardName")
            or f"{args.name}-{content_hash(args.name, length=7)}"
        )
        out: dict[str, Any] = {**inputs}
        resource_id = str(name)
        if token == "pulumi:providers:aws":
            default_tags = inputs.get("defaultTags")
            decoded = json.loads(default_tags) if isinstance(default_tags, str) else default_tags or {}
            self.default_tags[resource_id] = dict(decoded.get("tags") or {})
        elif token.startswith("aws:") and (tags_all := self._tags_all(args, inputs.get("tags"))) is not None:
            out["tagsAll"] = tags_all
        if token == "aws:kms/key:Key":
            digest = content_hash(pulumi.get_stack(), args.name, length=32)  # one key per stack, as in AWS
            resource_id = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
            out.update(keyId=resource_id, arn=_arn("kms", r, f"key/{resource_id}"))
        elif token == "aws:s3/bucket:Bucket":
            out.update(bucket=name, arn=f"arn:aws:s3:::{name}", bucketDomainName=f"{name}.s3.amazonaws.com", region=r)
        elif token == "aws:iam/role:Role":
            path = inputs.get("path") or "/"
            out.update(
                arn=f"arn:aws:iam::{ACCOUNT_ID}:role{path}{name}",
                uniqueId=f"AROA{content_hash(name, length=16).upper()}",
            )
        elif token == "aws:iam/policy:Policy":
            out.update(arn=f"arn:aws:iam::{ACCOUNT_ID}:policy{inputs.get('path') or '/'}{name}")
            resource_id = out["arn"]
        elif token == "aws:iam/rolePolicy:RolePolicy":
            resource_id = f"{inputs.get('role', 'role')}:{args.name}"
        elif token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs.get("url", "")).removeprefix("https://")
            out.update(arn=f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}")
            resource_id = out["arn"]
        elif token == "aws:ecr/repository:Repository":
            out.update(
                arn=_arn("ecr", r, f"repository/{name}"),
                registryId=ACCOUNT_ID,
                repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{r}.amazonaws.com/{name}",
            )
        elif token == "aws:sns/topic:Topic":
            out.update(arn=_arn("sns", r, str(name)))
            resource_id = out["arn"]
        elif token == "aws:sns/topicSubscription:TopicSubscription":
            out.update(arn=f"{inputs.get('topic')}:{content_hash(args.name, length=8)}")
            resource_id = out["arn"]
        elif token == "aws:cloudwatch/dashboard:Dashboard":
            out.update(dashboardArn=f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{name}")
        elif token == "aws:budgets/budget:Budget":
            out.update(arn=f"arn:aws:budgets::{ACCOUNT_ID}:budget/{name}")
            resource_id = f"{ACCOUNT_ID}:{name}"
        elif token == "aws:appautoscaling/target:Target":
            resource_id = str(inputs.get("resourceId", args.name))
            out.update(arn=_arn("application-autoscaling", r, f"scalable-target/{content_hash(resource_id)}"))
        elif token in ARN_RESOURCES:
            service, _, resource = ARN_RESOURCES[token].partition(":")
            out.update(arn=_arn(service, r, resource.format(name=name)))
        elif token in EC2_ID_PREFIXES:
            # EC2 ids are a type prefix and 17 hex digits; ARNs name the type by its API resource name.
            prefix, arn_type = EC2_ID_PREFIXES[token]
            resource_id = f"{prefix}-{content_hash(pulumi.get_stack(), token, args.name, length=17)}"
            out.update(arn=_arn("ec2", r, f"{arn_type}/{resource_id}"), ownerId=ACCOUNT_ID)
            if token == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Gateway":
                out["prefixListId"] = f"pl-{content_hash(inputs.get('serviceName'), length=8)}"
            if token == "aws:ec2/securityGroup:SecurityGroup":
                out.update(name=name)
            if arn_type == "security-group-rule":  # ingress and egress rules alike
                out["securityGroupRuleId"] = resource_id
        elif token.startswith("aws:") and "arn" not in out:
            out["arn"] = _arn(token.split(":")[1].split("/")[0], r, f"{token.rsplit(':', 1)[-1].lower()}/{name}")
        return resource_id, out

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]  # dict: the SDK accepts it
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/preview",
                "userId": "AIDAPREVIEW",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{letter}" for letter in AVAILABILITY_ZONE_LETTERS]
            prefix = "".join(part[0] for part in self.region.split("-")[:-1]) + self.region.rsplit("-", 1)[-1]
            return {
                "names": names,
                "zoneIds": [f"{prefix}-az{i + 1}" for i in range(len(names))],
                "groupNames": [self.region] * len(names),
                "id": self.region,
            }
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping each registration as a resource record."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.records: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            self.records.append(_record(response.urn, request, "", {}))
            return response
        from pulumi.runtime import rpc

        state = rpc.deserialize_properties(response.object) if request.custom else {}
        inputs = rpc.deserialize_properties(request.object)
        self.records.append(_record(response.urn, request, response.id, {**inputs, **state}))
        return response


def _record(urn: str, request: Any, resource_id: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": urn,
        "type": request.type,
        "name": request.name,
        "custom": bool(request.custom),
        "id": resource_id or "",
        "parent": request.parent or "",
        "provider": request.provider or "",
        "dependencies": list(request.dependencies),
        "props": plain(props, stringify=True),
    }


# --- running the program --------------------------------------------------------------------


def preview_stack(stack: str | Path, config_overrides: dict[str, Any] | None = None) -> Preview:
    """Validate the stack's config, run infra/__main__.py under mocks, return its graph and outputs."""
    started = time.perf_counter()
    config = load_stack_config(stack, config_overrides)  # a bad config fails here, before any resource
    _, raw = read_raw_config(stack)
    raw = {**raw, **(config_overrides or {})}

    records, outputs = run_program(PROGRAM, PROJECT, config.stack, config.region, to_pulumi_config(raw))
    return Preview(
        stack=config.stack,
        resources=records,
        outputs=outputs,
        seconds=time.perf_counter() - started,
        config=config,
    )


def run_program(
    program: Path, project: str, stack: str, region: str, pulumi_config: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one Pulumi program under the mocks: its resource records and its stack outputs.

    Shared by the main program (preview_stack) and the bootstrap program (infra/bootstrap/preview.py).
    """
    monitor = RecordingMonitor(AwsMocks(region))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_all_config(pulumi_config)
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
        root = pulumi_settings.get_root_resource()
        loop.run_until_complete(run_pulumi_func(lambda: _run(program)))
        outputs = loop.run_until_complete(pulumi.Output.from_input(getattr(root, "outputs", {})).future())
    finally:
        pulumi_settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
    return monitor.records, plain(outputs, stringify=True)


def _run(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def main() -> None:  # python -m infra.preview dev
    import sys

    print(json.dumps(preview_stack(sys.argv[1] if len(sys.argv) > 1 else "dev").to_json(), indent=2))


if __name__ == "__main__":
    main()
