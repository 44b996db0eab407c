"""An in-memory AwsView: the emulated AWS for tests of the Databricks emulator alone."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, replace

from dbx_privatelink.catalog import Catalog, default_catalog, port_ranges
from dbx_privatelink_local.aws_view import AwsEndpoint, AwsSecurityGroup, AwsSubnet, AwsVpc, SgRule

DEFAULT_AWS_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class WorkspaceVpc:
    """The ids of a customer-managed VPC built to Databricks' requirements."""

    region: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    rest_endpoint_id: str
    relay_endpoint_id: str


class InMemoryAwsView:
    """VPCs, subnets, security groups and interface endpoints held in dicts, keyed by region."""

    def __init__(self, owner_account_id: str = DEFAULT_AWS_ACCOUNT) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.owner_account_id = owner_account_id
        self.vpcs: dict[tuple[str, str], AwsVpc] = {}
        self.subnets: dict[tuple[str, str], AwsSubnet] = {}
        self.security_groups: dict[tuple[str, str], AwsSecurityGroup] = {}
        self.endpoints: dict[tuple[str, str], AwsEndpoint] = {}
        self.accepted: list[tuple[str, str]] = []

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):017x}"

    # --- building the world -------------------------------------------------------------------

    def add_vpc(
        self,
        region: str,
        cidr_block: str = "10.0.0.0/16",
        *,
        dns_support: bool = True,
        dns_hostnames: bool = True,
    ) -> AwsVpc:
        vpc = AwsVpc(self._new_id("vpc"), cidr_block, dns_support, dns_hostnames)
        with self._lock:
            self.vpcs[(region, vpc.vpc_id)] = vpc
        return vpc

    def set_vpc_dns(self, region: str, vpc_id: str, *, dns_support: bool, dns_hostnames: bool) -> None:
        with self._lock:
            vpc = self.vpcs[(region, vpc_id)]
            self.vpcs[(region, vpc_id)] = replace(
                vpc, enable_dns_support=dns_support, enable_dns_hostnames=dns_hostnames
            )

    def add_subnet(self, region: str, vpc_id: str, cidr_block: str, availability_zone: str) -> AwsSubnet:
        subnet = AwsSubnet(self._new_id("subnet"), vpc_id, cidr_block, availability_zone)
        with self._lock:
            self.subnets[(region, subnet.subnet_id)] = subnet
        return subnet

    def add_security_group(
        self,
        region: str,
        vpc_id: str,
        ingress: tuple[SgRule, ...] = (),
        egress: tuple[SgRule, ...] = (),
        *,
        self_referencing: bool = False,
    ) -> AwsSecurityGroup:
        """A group; with self_referencing, all TCP and UDP to and from itself are added to both directions."""
        group_id = self._new_id("sg")
        if self_referencing:
            own = tuple(SgRule(proto, 0, 65535, group_ids=(group_id,)) for proto in ("tcp", "udp"))
            ingress, egress = ingress + own, egress + own
        group = AwsSecurityGroup(group_id, vpc_id, ingress, egress)
        with self._lock:
            self.security_groups[(region, group_id)] = group
        return group

    def put_security_group(self, region: str, group: AwsSecurityGroup) -> None:
        with self._lock:
            self.security_groups[(region, group.group_id)] = group

    def add_vpc_endpoint(
        self,
        region: str,
        vpc_id: str,
        service_name: str,
        *,
        state: str = "pendingAcceptance",
        owner_account_id: str | None = None,
    ) -> AwsEndpoint:
        endpoint = AwsEndpoint(
            vpc_endpoint_id=self._new_id("vpce"),
            region=region,
            owner_account_id=owner_account_id or self.owner_account_id,
            vpc_id=vpc_id,
            service_name=service_name,
            state=state,
        )
        with self._lock:
            self.endpoints[(region, endpoint.vpc_endpoint_id)] = endpoint
        return endpoint

    def set_endpoint_state(self, region: str, vpc_endpoint_id: str, state: str) -> None:
        with self._lock:
            key = (region, vpc_endpoint_id)
            self.endpoints[key] = replace(self.endpoints[key], state=state)

    def delete_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        with self._lock:
            self.endpoints.pop((region, vpc_endpoint_id), None)

    def add_workspace_vpc(self, region: str, catalog: Catalog | None = None) -> WorkspaceVpc:
        """A VPC that passes Databricks' network validation, with both PrivateLink endpoints pending."""
        catalog = catalog or default_catalog()
        services = catalog.region(region)
        if services is None:
            raise ValueError(f"no Databricks endpoint services for {region} in the catalog")
        vpc = self.add_vpc(region)
        subnets = (
            self.add_subnet(region, vpc.vpc_id, "10.0.0.0/19", f"{region}a"),
            self.add_subnet(region, vpc.vpc_id, "10.0.32.0/19", f"{region}b"),
        )
        egress = tuple(
            SgRule("tcp", lo, hi, cidr_blocks=("0.0.0.0/0",))
            for lo, hi in port_ranges(catalog.workspace_sg_egress_tcp_ports)
        )
        group = self.add_security_group(region, vpc.vpc_id, egress=egress, self_referencing=True)
        rest = self.add_vpc_endpoint(region, vpc.vpc_id, services.workspace_service)
        relay = self.add_vpc_endpoint(region, vpc.vpc_id, services.relay_service)
        return WorkspaceVpc(
            region=region,
            vpc_id=vpc.vpc_id,
            subnet_ids=tuple(s.subnet_id for s in subnets),
            security_group_id=group.group_id,
            rest_endpoint_id=rest.vpc_endpoint_id,
            relay_endpoint_id=relay.vpc_endpoint_id,
        )

    # --- AwsView ------------------------------------------------------------------------------

    def get_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> AwsEndpoint | None:
        with self._lock:
            return self.endpoints.get((region, vpc_endpoint_id))

    def accept_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        with self._lock:
            key = (region, vpc_endpoint_id)
            endpoint = self.endpoints.get(key)
            if endpoint is None or endpoint.state != "pendingAcceptance":
                return
            self.endpoints[key] = replace(endpoint, state="available")
            self.accepted.append(key)

    def reject_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        with self._lock:
            key = (region, vpc_endpoint_id)
            if key in self.endpoints:
                self.endpoints[key] = replace(self.endpoints[key], state="rejected")

    def get_vpc(self, region: str, vpc_id: str) -> AwsVpc | None:
        with self._lock:
            return self.vpcs.get((region, vpc_id))

    def get_subnets(self, region: str, subnet_ids: list[str]) -> list[AwsSubnet]:
        with self._lock:
            return [self.subnets[(region, s)] for s in subnet_ids if (region, s) in self.subnets]

    def get_security_groups(self, region: str, group_ids: list[str]) -> list[AwsSecurityGroup]:
        with self._lock:
            return [
                self.security_groups[(region, g)] for g in group_ids if (region, g) in self.security_groups
            ]
