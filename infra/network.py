"""A private network for training and hosting: no internet route, AWS reached through VPC endpoints.

Private subnets in two or more availability zones, no internet gateway and no NAT gateway: a
compromised training container or model server has nowhere to send data but AWS's own APIs,
and those only through endpoints whose policies admit this account's principals alone.

What AWS enforces here and the mocks do not (docs/aws-rules.md, "Hosting, storage and events"):
- VPC-CIDR-SIZE: a VPC block and each subnet are /16 to /28 (`kernel.stack_config._cidr`).
- VPC-ENDPOINTS-FOR-SAGEMAKER: with no internet route, a training job or endpoint in the VPC
  reaches S3 only through a gateway endpoint on its subnets' route tables, and the SageMaker,
  STS, CloudWatch, ECR, KMS and SNS APIs only through interface endpoints with private DNS.
- VPC-ENDPOINT-PRIVATE-DNS: private DNS on an interface endpoint needs the VPC's
  enableDnsSupport and enableDnsHostnames.
- ECR-LAYERS-VIA-S3: ECR serves image layers from an AWS-owned S3 bucket
  (`prod-<region>-starport-layer-bucket`) through presigned URLs, so the S3 gateway endpoint's
  policy must let anyone read that one bucket, or no image pulls.
- VPC-DISTRIBUTED-TRAINING-SG: instances of one distributed training job talk to each other:
  the workload security group admits its own members.
- The provider removes the default allow-all egress rule of a security group it creates, and
  the VPC's default security group is taken over with no rules at all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.bootstrap.contract import boundary_arn
from infra.common import Component, physical_name, policy_document
from infra.environment import Environment
from kernel.stack_config import SUBNET_SPLIT_BITS, NetworkConfig

HTTPS = 443

# Interface endpoints: what training and hosting containers, SageMaker's agents on the instances,
# and the code we run there call. https://docs.aws.amazon.com/sagemaker/latest/dg/interface-vpc-endpoint.html
INTERFACE_SERVICES = {
    "sagemaker-api": "sagemaker.api",
    "sagemaker-runtime": "sagemaker.runtime",
    "sts": "sts",
    "logs": "logs",
    "monitoring": "monitoring",
    "ecr-api": "ecr.api",
    "ecr-dkr": "ecr.dkr",
    "kms": "kms",
    "sns": "sns",
}


def service_name(region: str, service: str) -> str:
    return f"com.amazonaws.{region}.{service}"


def ecr_layer_bucket(region: str) -> str:
    """AWS rule ECR-LAYERS-VIA-S3. https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html"""
    return f"arn:aws:s3:::prod-{region}-starport-layer-bucket/*"


def subnet_blocks(cidr: str, count: int) -> list[str]:
    """The first `count` of the block's 16 equal subnets, one per availability zone."""
    block = ipaddress.IPv4Network(cidr)
    return [str(s) for s in list(block.subnets(prefixlen_diff=SUBNET_SPLIT_BITS))[:count]]


Rule = aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule  # a security group rule, either way


@dataclass(frozen=True)
class Placement:
    """Where training jobs and instance endpoints run: `VpcConfig`'s shape, with ids the network
    knows only once created."""

    subnetIds: tuple[pulumi.Input[str], ...]
    securityGroupIds: tuple[pulumi.Input[str], ...]
    enabled: bool = True


@dataclass(frozen=True)
class NetworkArgs:
    env: Environment
    network: NetworkConfig


class Network(Component):
    """VPC, private subnets, the S3 gateway endpoint, interface endpoints and two security groups."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:network:Network", name, opts)
        self._name, self._args = name, args
        prefix = physical_name(args.env.stack)

        def tags(purpose: str) -> dict[str, str]:
            return {"Name": f"{prefix}-{purpose}"}

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.network.cidr,
            enable_dns_support=True,  # VPC-ENDPOINT-PRIVATE-DNS
            enable_dns_hostnames=True,
            tags=tags("vpc"),
            opts=self.child,
        )
        # The default security group admits all traffic among its members: strip it, so nothing
        # lands in it by accident.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, tags=tags("default"), opts=self.child)

        zones = self._zones(args.network)
        self.subnets: list[aws.ec2.Subnet] = []
        self.route_tables: list[aws.ec2.RouteTable] = []
        for i, block in enumerate(subnet_blocks(args.network.cidr, args.network.azs)):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=self.vpc.id,
                cidr_block=block,
                availability_zone=zones[i],
                map_public_ip_on_launch=False,
                tags=tags(f"private-{i}"),
                opts=self.child,
            )
            # Only the implicit local route: no internet or NAT gateway anywhere in this VPC.
            table = aws.ec2.RouteTable(
                f"{name}-private-{i}", vpc_id=self.vpc.id, tags=tags(f"private-{i}"), opts=self.child
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=self.child
            )
            self.subnets.append(subnet)
            self.route_tables.append(table)

        def group(logical: str, purpose: str, description: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{name}-{logical}-sg",
                name=f"{prefix}-{purpose}",
                description=f"mlops {args.env.stack}: {description}",
                vpc_id=self.vpc.id,
                tags=tags(purpose),
                opts=self.child,
            )

        self.endpoint_sg = group("endpoints", "vpc-endpoints", "VPC interface endpoints, HTTPS from the workloads only")
        self.workload_sg = group("workload", "workloads", "training jobs and endpoints, HTTPS to AWS endpoints only")

        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=service_name(args.env.region, "s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in self.route_tables],
            policy=policy_document(
                [
                    self._this_account("s3:*", "*"),
                    {
                        "Sid": "EcrImageLayers",  # ECR-LAYERS-VIA-S3: presigned by ECR, not by us
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": ecr_layer_bucket(args.env.region),
                    },
                ]
            ),
            tags=tags("s3"),
            opts=self.child,
        )
        self.interface_endpoints = {
            key: aws.ec2.VpcEndpoint(
                f"{name}-{key}",
                vpc_id=self.vpc.id,
                service_name=service_name(args.env.region, service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.subnets],
                security_group_ids=[self.endpoint_sg.id],
                policy=policy_document([self._this_account("*", self._endpoint_resources(key))]),
                tags=tags(key),
                opts=self.child,
            )
            for key, service in INTERFACE_SERVICES.items()
        }
        self._rules(name)

        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "subnetIds": [s.id for s in self.subnets],
                "workloadSecurityGroupId": self.workload_sg.id,
                "s3EndpointId": self.s3_endpoint.id,
            }
        )

    @property
    def vpc_config(self) -> Placement:
        """What training jobs and instance endpoints run in: the private subnets and the workload group."""
        return Placement(tuple(s.id for s in self.subnets), (self.workload_sg.id,))

    def _zones(self, network: NetworkConfig) -> list[pulumi.Input[str]]:
        if network.availabilityZones:
            return list(network.availabilityZones)
        # Regular zones only: Local and Wavelength Zones (opted in) lack most interface endpoints.
        available = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return [available.names[i] for i in range(network.azs)]

    def _this_account(self, action: str, resource: pulumi.Input[Any]) -> dict[str, Any]:
        """An endpoint policy statement: only principals of this account pass through."""
        return {
            "Sid": "ThisAccountsPrincipalsOnly",
            "Effect": "Allow",
            "Principal": "*",
            "Action": action,
            "Resource": resource,
            "Condition": {"StringEquals": {"aws:PrincipalAccount": self._args.env.account_id}},
        }

    def _endpoint_resources(self, key: str) -> pulumi.Input[Any]:
        """This environment's resources where the service names them; `*` where calls have none
        (GetAuthorizationToken, PutMetricData, AssumeRole) or reach upstream environments' (KMS, images)."""
        a = self._args
        prefix = physical_name(a.env.stack)
        if key == "sagemaker-runtime":
            return pulumi.Output.concat(
                "arn:aws:sagemaker:", a.env.region, ":", a.env.account_id, ":endpoint/", prefix, "-*"
            )
        if key == "sns":
            return pulumi.Output.concat("arn:aws:sns:", a.env.region, ":", a.env.account_id, ":", prefix, "-*")
        if key == "logs":
            return pulumi.Output.concat("arn:aws:logs:", a.env.region, ":", a.env.account_id, ":log-group:*")
        return "*"

    def _rules(self, name: str) -> None:
        """Separate rule resources, so the two groups can name each other without a cycle."""
        workload, endpoints = self.workload_sg.id, self.endpoint_sg.id
        https: tuple[tuple[str, type[Rule], pulumi.Input[str], dict[str, Any], str], ...] = (
            (
                "endpoints-from-workloads",
                aws.vpc.SecurityGroupIngressRule,
                endpoints,
                {"referenced_security_group_id": workload},
                "HTTPS from training jobs and endpoints",
            ),
            (
                "workloads-to-endpoints",
                aws.vpc.SecurityGroupEgressRule,
                workload,
                {"referenced_security_group_id": endpoints},
                "HTTPS to the interface endpoints",
            ),
            (
                "workloads-to-s3",
                aws.vpc.SecurityGroupEgressRule,
                workload,
                {"prefix_list_id": self.s3_endpoint.prefix_list_id},
                "HTTPS to S3 through the gateway endpoint",
            ),
        )
        for suffix, rule, group, peer, description in https:
            rule(
                f"{name}-{suffix}",
                security_group_id=group,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                description=description,
                opts=self.child,
                **peer,
            )
        # VPC-DISTRIBUTED-TRAINING-SG: the hosts of one job exchange gradients (NCCL, MPI).
        for direction, rule in (("in", aws.vpc.SecurityGroupIngressRule), ("out", aws.vpc.SecurityGroupEgressRule)):
            rule(
                f"{name}-workloads-{direction}-among-themselves",
                security_group_id=workload,
                referenced_security_group_id=workload,
                ip_protocol="-1",
                description="distributed training: hosts of one job talk to each other",
                opts=self.child,
            )

    def add_flow_logs(self, kms_key_arn: pulumi.Input[str], retention_days: int) -> aws.ec2.FlowLog:
        """Every accepted and rejected flow, into a log group encrypted with the stack's key.

        Separate from the constructor because the key lives in storage, whose bucket policies
        need this network's S3 endpoint first.
        """
        a, name = self._args, self._name
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/mlops/{a.env.stack}/vpc-flow-logs",
            kms_key_id=kms_key_arn,  # the key policy lets CloudWatch Logs use it for this account's groups
            retention_in_days=retention_days,
            opts=self.child,
        )
        account = a.env.account_id
        role = aws.iam.Role(
            f"{name}-flow-logs",
            name=physical_name(a.env.stack, "vpc-flow-logs"),
            description=f"VPC flow logs of mlops {a.env.stack} deliver to their log group",
            assume_role_policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": account},
                            "ArnLike": {
                                "aws:SourceArn": pulumi.Output.concat(
                                    "arn:aws:ec2:", a.env.region, ":", account, ":vpc-flow-log/*"
                                )
                            },
                        },
                    }
                ]
            ),
            permissions_boundary=boundary_arn(account),  # the deploy role creates no role without it
            opts=self.child,
        )
        delivery = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            name="deliver-flow-logs",
            policy=policy_document(
                [
                    {
                        "Sid": "DeliverToTheFlowLogGroup",
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                        ],
                        "Resource": [self.flow_log_group.arn, pulumi.Output.concat(self.flow_log_group.arn, ":*")],
                    }
                ]
            ),
            opts=self.child,
        )
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            # CreateFlowLogs checks that the role may deliver: give it its policy first
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]),
        )
        return self.flow_log
