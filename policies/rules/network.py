"""Network: prod trains and serves inside a private VPC with no route to the internet (DESIGN 8).

Written against the records infra/network.py declares (aws:ec2/vpc:Vpc, aws:ec2/subnet:Subnet,
aws:ec2/vpcEndpoint:VpcEndpoint...), so it judges any stack that has them and flags one that has not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kernel.aws_model import UNKNOWN
from policies.context import PolicyContext
from policies.graph import StackGraph, listify, truthy
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily
from policies.sagemaker_graph import MODEL, models_served_only_serverless

NETWORK = RuleFamily("network")

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
INTERNET_GATEWAY_ATTACHMENT = "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment"
EGRESS_ONLY_GATEWAY = "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"

# Mandatory in prod (a high-severity rule); a pin here would lower it everywhere.
PRIVATE_NETWORK_PIN: str | None = None

# Resources whose mere presence gives a VPC a way out to the internet.
INTERNET_PATHS = (INTERNET_GATEWAY, INTERNET_GATEWAY_ATTACHMENT, EGRESS_ONLY_GATEWAY)


def _public_nat(resource: Resource) -> bool:
    return str(resource.props.get("connectivityType") or "public").lower() != "private"


def _routes_to_internet(resource: Resource) -> bool:
    """A route (or a route table's inline route) through an internet gateway."""
    routes = [resource.props] if resource.canonical_type == ROUTE else listify(resource.props.get("routes"))
    return any(
        isinstance(r, Mapping) and str(r.get("gatewayId") or "").startswith("igw-") for r in routes if r is not UNKNOWN
    )


def _model_in_vpc(model: Resource) -> bool:
    for block in listify(model.props.get("vpcConfig")):
        if block is UNKNOWN or (isinstance(block, Mapping) and listify(block.get("subnets"))):
            return True
    return False


@NETWORK.stack("network-private-prod", severity="high", environments=("prod",), pinned=PRIVATE_NETWORK_PIN)
def network_private_prod(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Prod has a VPC with private subnets and no internet path, and SageMaker models and training run in it.

    Why: Outside a private VPC, prod's training and serving containers reach AWS over public endpoints and can reach the
    internet: a compromised dependency can send training data or captured requests anywhere, and nothing (flow logs,
    endpoint policies) records or restricts it.

    Fix: declare the network component (aws.ec2.Vpc, private aws.ec2.Subnet with map_public_ip_on_launch=False, VPC
    endpoints for S3, ECR, SageMaker, STS, CloudWatch; no InternetGateway or NatGateway), set mlops:vpc so
    aws.sagemaker.Model gets vpc_config and trainingDefaults.vpc carries the subnets.
    """
    out = Collected()
    anchor = graph.stack
    if not graph.of_type(VPC):
        where = anchor.label if anchor is not None else "the stack"
        out.add(anchor, f"{where}: prod declares no VPC. Fix: add the network component ({VPC}, private subnets)")
        return out.items
    subnets = graph.of_type(SUBNET)
    public = [s for s in subnets if truthy(s.props.get("mapPublicIpOnLaunch", False))]
    for s in public:
        out.flag(s, "launches instances with public IP addresses", "set map_public_ip_on_launch=False")
    if len(public) == len(subnets):
        where = anchor.label if anchor is not None else "the stack"
        out.add(anchor, f"{where}: prod's VPC has no private subnet. Fix: add private aws.ec2.Subnet resources")
    exits = graph.of_type(*INTERNET_PATHS) + [n for n in graph.of_type(NAT_GATEWAY) if _public_nat(n)]
    exits += [r for r in graph.of_type(ROUTE, ROUTE_TABLE) if _routes_to_internet(r)]
    for gateway in exits:
        out.flag(gateway, "gives prod's VPC a path to the internet", "remove it; use VPC endpoints")
    if ctx.has_vpc:
        return out.items  # the stack config names the VPC: sagemaker-model-vpc and sagemaker-training-vpc judge jobs
    for model in graph.of_type(MODEL):
        if not _model_in_vpc(model) and not models_served_only_serverless(model, graph):
            out.flag(model, "runs outside prod's VPC", "set vpc_config with the private subnets")
    training = graph.outputs.get("trainingDefaults")
    vpc = training.get("vpc") if isinstance(training, Mapping) else None
    if isinstance(training, Mapping) and not (isinstance(vpc, Mapping) and listify(vpc.get("subnetIds"))):
        out.add(
            anchor,
            f"{anchor.label if anchor else 'the stack'}: training jobs run outside prod's VPC. Fix: export "
            "trainingDefaults.vpc with the private subnets",
        )
    return out.items
