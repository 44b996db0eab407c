"""The AwsView of aws_view.py on moto's EC2 backends: what the Databricks emulator sees of the emulated AWS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbx_privatelink_local.aws.ec2_patches import EndpointLifecycle
from dbx_privatelink_local.aws_view import AwsEndpoint, AwsSecurityGroup, AwsSubnet, AwsVpc, SgRule


def _flag(value: Any) -> bool:
    """moto keeps VPC attributes as bools or as the strings ModifyVpcAttribute sent."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


class MotoAwsView:
    """Reads moto's backends directly (no HTTP, no CloudTrail). The Databricks service runs in its own AWS
    account, so it looks for customer objects in every emulated account that has the region loaded,
    `account_id` first when given."""

    def __init__(self, lifecycle: EndpointLifecycle, account_id: str | None = None) -> None:
        self._lifecycle = lifecycle
        self._account_id = account_id

    def _backends(self, region: str) -> Iterator[Any]:
        from moto.ec2.models import ec2_backends

        accounts = list(ec2_backends.keys())
        if self._account_id is not None:
            accounts = [self._account_id] + [a for a in accounts if a != self._account_id]
        for account in accounts:
            per_region = ec2_backends[account]
            if region in set(per_region):  # loaded regions only: a lookup must not create backends
                yield per_region[region]

    def _endpoint(self, region: str, vpc_endpoint_id: str) -> tuple[Any, Any] | None:
        for backend in self._backends(region):
            endpoint = backend.vpc_end_points.get(vpc_endpoint_id)
            if endpoint is not None:
                return backend, endpoint
        return None

    def get_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> AwsEndpoint | None:
        """The endpoint as its owner's DescribeVpcEndpoints shows it, or None."""
        found = self._endpoint(region, vpc_endpoint_id)
        if found is None:
            return None
        backend, endpoint = found
        return AwsEndpoint(
            vpc_endpoint_id=endpoint.id,
            region=region,
            owner_account_id=backend.account_id,
            vpc_id=endpoint.vpc_id,
            service_name=endpoint.service_name,
            state=endpoint.state,
            endpoint_type=endpoint.vpc_endpoint_type or "Gateway",
        )

    def accept_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        """The endpoint service accepts the connection: pendingAcceptance -> pending -> available."""
        found = self._endpoint(region, vpc_endpoint_id)
        if found is not None:
            self._lifecycle.accept(found[0].account_id, region, vpc_endpoint_id)

    def reject_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        """The endpoint service rejects the connection: pendingAcceptance -> rejected."""
        found = self._endpoint(region, vpc_endpoint_id)
        if found is not None:
            self._lifecycle.reject(found[0].account_id, region, vpc_endpoint_id)

    def get_vpc(self, region: str, vpc_id: str) -> AwsVpc | None:
        """The VPC with its DNS attributes, or None."""
        for backend in self._backends(region):
            vpc = backend.vpcs.get(vpc_id)
            if vpc is not None:
                return AwsVpc(
                    vpc_id=vpc.id,
                    cidr_block=vpc.cidr_block,
                    enable_dns_support=_flag(vpc.enable_dns_support),
                    enable_dns_hostnames=_flag(vpc.enable_dns_hostnames),
                )
        return None

    def get_subnets(self, region: str, subnet_ids: list[str]) -> list[AwsSubnet]:
        """The subnets that exist among `subnet_ids`, in the order asked."""
        found: dict[str, AwsSubnet] = {}
        for backend in self._backends(region):
            for per_az in backend.subnets.values():
                for subnet in per_az.values():
                    if subnet.id in subnet_ids and subnet.id not in found:
                        found[subnet.id] = AwsSubnet(
                            subnet_id=subnet.id,
                            vpc_id=subnet.vpc_id,
                            cidr_block=subnet.cidr_block,
                            availability_zone=subnet.availability_zone,
                        )
        return [found[s] for s in subnet_ids if s in found]

    def get_security_groups(self, region: str, group_ids: list[str]) -> list[AwsSecurityGroup]:
        """The security groups that exist among `group_ids`, one SgRule per moto rule."""
        found: dict[str, AwsSecurityGroup] = {}
        for backend in self._backends(region):
            for per_vpc in backend.groups.values():
                for group in per_vpc.values():
                    if group.id in group_ids and group.id not in found:
                        found[group.id] = AwsSecurityGroup(
                            group_id=group.id,
                            vpc_id=group.vpc_id or "",
                            ingress=tuple(_rule(r) for r in group.ingress_rules),
                            egress=tuple(_rule(r) for r in group.egress_rules),
                        )
        return [found[g] for g in group_ids if g in found]


def _rule(rule: Any) -> SgRule:
    cidr = rule.ip_range.get("CidrIp") if rule.ip_range else None
    group = rule.source_group.get("GroupId") if rule.source_group else None
    return SgRule(
        ip_protocol=str(rule.ip_protocol),
        from_port=rule.from_port,
        to_port=rule.to_port,
        cidr_blocks=(cidr,) if cidr else (),
        group_ids=(group,) if group else (),
    )
