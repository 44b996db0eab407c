"""What the Databricks emulator may see and do of the emulated AWS: the seam between the two emulators.

The Databricks service reads the customer's AWS objects (endpoints, VPC, subnets, security groups) when an
endpoint is registered or a network is attached, and accepts the endpoint connection once it is
registered. The local stack implements this on moto's backends (aws/moto_view.py); tests of the emulator
alone use an in-memory implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class AwsEndpoint:
    vpc_endpoint_id: str
    region: str
    owner_account_id: str
    vpc_id: str
    service_name: str  # com.amazonaws.vpce.<region>.vpce-svc-...
    state: str  # pendingAcceptance | pending | available | rejected | deleted | failed ...
    endpoint_type: str = "Interface"


@dataclass(frozen=True)
class AwsVpc:
    vpc_id: str
    cidr_block: str
    enable_dns_support: bool
    enable_dns_hostnames: bool


@dataclass(frozen=True)
class AwsSubnet:
    subnet_id: str
    vpc_id: str
    cidr_block: str
    availability_zone: str


@dataclass(frozen=True)
class SgRule:
    ip_protocol: str  # "tcp" | "udp" | "-1"
    from_port: int | None
    to_port: int | None
    cidr_blocks: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AwsSecurityGroup:
    group_id: str
    vpc_id: str
    ingress: tuple[SgRule, ...] = field(default_factory=tuple)
    egress: tuple[SgRule, ...] = field(default_factory=tuple)


class AwsView(Protocol):
    def get_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> AwsEndpoint | None: ...

    def accept_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None:
        """The endpoint service accepts the connection: pendingAcceptance -> pending -> available."""
        ...

    def reject_vpc_endpoint(self, region: str, vpc_endpoint_id: str) -> None: ...

    def get_vpc(self, region: str, vpc_id: str) -> AwsVpc | None: ...

    def get_subnets(self, region: str, subnet_ids: list[str]) -> list[AwsSubnet]: ...

    def get_security_groups(self, region: str, group_ids: list[str]) -> list[AwsSecurityGroup]: ...
