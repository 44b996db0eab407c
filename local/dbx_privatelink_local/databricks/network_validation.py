"""The checks Databricks runs on a customer-managed network when a workspace is attached to it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dbx_privatelink.catalog import Catalog, port_ranges
from dbx_privatelink_local.aws_view import AwsSecurityGroup, AwsView, SgRule

MIN_PREFIX, MAX_PREFIX = 17, 26
ALL_PORTS = (0, 65535)


@dataclass(frozen=True)
class NetworkProblem:
    error_type: str  # credentials | vpc | subnet | securityGroup | networkAcl
    error_message: str

    def to_json(self) -> dict[str, str]:
        return {"error_type": self.error_type, "error_message": self.error_message}


@dataclass(frozen=True)
class EndpointFacts:
    """What the validation needs to know of one Databricks endpoint registration."""

    region: str
    use_case: str
    state: str
    aws_vpc_endpoint_id: str


def _covered(needed: tuple[int, int], ranges: Iterable[tuple[int, int]]) -> bool:
    """True when the union of `ranges` covers every port of `needed` (rules may cover it jointly)."""
    lo, hi = needed
    nxt = lo
    for r_lo, r_hi in sorted(ranges):
        if r_lo > nxt:
            break
        nxt = max(nxt, r_hi + 1)
        if nxt > hi:
            return True
    return nxt > hi


def _rule_ports(rule: SgRule, protocol: str) -> tuple[int, int] | None:
    if rule.ip_protocol in ("-1", "all"):
        return ALL_PORTS
    if rule.ip_protocol.lower() != protocol:
        return None
    return (rule.from_port or 0, 65535 if rule.to_port is None else rule.to_port)


def _fmt(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _check_security_groups(
    groups: list[AwsSecurityGroup], catalog: Catalog, problems: list[NetworkProblem]
) -> None:
    # Rules of all the network's groups count together: Databricks attaches every one of them.
    ids = {g.group_id for g in groups}
    names = ", ".join(sorted(ids))
    egress = [r for g in groups for r in g.egress]
    ingress = [r for g in groups for r in g.ingress]

    def ports(rules: list[SgRule], protocol: str, *, self_only: bool) -> list[tuple[int, int]]:
        out = []
        for rule in rules:
            to_self_only = bool(rule.group_ids) and not rule.cidr_blocks and set(rule.group_ids) <= ids
            if self_only and not ids.intersection(rule.group_ids):
                continue
            # The required egress goes to the control plane and AWS services: a rule that only reaches
            # the group's own members does not open it.
            if not self_only and to_self_only:
                continue
            p = _rule_ports(rule, protocol)
            if p is not None:
                out.append(p)
        return out

    missing = [
        need
        for need in port_ranges(catalog.workspace_sg_egress_tcp_ports)
        if not _covered(need, ports(egress, "tcp", self_only=False))
    ]
    if missing:
        problems.append(
            NetworkProblem(
                "securityGroup", f"Security groups {names} do not allow egress TCP to ports {_fmt(missing)}"
            )
        )
    for direction, rules in (("ingress", ingress), ("egress", egress)):
        for protocol in ("tcp", "udp"):
            if not _covered(ALL_PORTS, ports(rules, protocol, self_only=True)):
                problems.append(
                    NetworkProblem(
                        "securityGroup",
                        f"Security groups {names} do not allow all {protocol.upper()} {direction} "
                        "from and to the same security group",
                    )
                )


def validate_network(
    *,
    region: str,
    vpc_id: str,
    subnet_ids: list[str],
    security_group_ids: list[str],
    rest_api: list[str],
    dataplane_relay: list[str],
    aws: AwsView,
    catalog: Catalog,
    endpoint: Callable[[str], EndpointFacts | None],
) -> list[NetworkProblem]:
    """Every problem that keeps this network from carrying a workspace in `region`; empty when valid."""
    problems: list[NetworkProblem] = []

    vpc = aws.get_vpc(region, vpc_id)
    if vpc is None:
        problems.append(NetworkProblem("vpc", f"VPC {vpc_id} does not exist in region {region}"))
    else:
        if not vpc.enable_dns_support:
            problems.append(
                NetworkProblem("vpc", f"VPC {vpc_id} does not have DNS support (enableDnsSupport)")
            )
        if not vpc.enable_dns_hostnames:
            problems.append(
                NetworkProblem("vpc", f"VPC {vpc_id} does not have DNS hostnames (enableDnsHostnames)")
            )

    subnets = {s.subnet_id: s for s in aws.get_subnets(region, subnet_ids)}
    zones: set[str] = set()
    for subnet_id in subnet_ids:
        subnet = subnets.get(subnet_id)
        if subnet is None:
            problems.append(NetworkProblem("subnet", f"Subnet {subnet_id} does not exist in region {region}"))
            continue
        zones.add(subnet.availability_zone)
        if subnet.vpc_id != vpc_id:
            problems.append(
                NetworkProblem("subnet", f"Subnet {subnet_id} is in {subnet.vpc_id}, not in VPC {vpc_id}")
            )
        prefix = ipaddress.ip_network(subnet.cidr_block, strict=False).prefixlen
        if not MIN_PREFIX <= prefix <= MAX_PREFIX:
            problems.append(
                NetworkProblem(
                    "subnet",
                    f"Subnet {subnet_id} has netmask /{prefix}; "
                    f"it must be between /{MIN_PREFIX} and /{MAX_PREFIX}",
                )
            )
    if subnets and len(zones) < 2:
        problems.append(
            NetworkProblem(
                "subnet", "Subnets must be in at least 2 different availability zones, got " + str(len(zones))
            )
        )

    found = aws.get_security_groups(region, security_group_ids)
    found_ids = {g.group_id for g in found}
    for group_id in security_group_ids:
        if group_id not in found_ids:
            problems.append(
                NetworkProblem(
                    "securityGroup", f"Security group {group_id} does not exist in region {region}"
                )
            )
    for group in found:
        if group.vpc_id != vpc_id:
            problems.append(
                NetworkProblem(
                    "securityGroup",
                    f"Security group {group.group_id} is in {group.vpc_id}, not in VPC {vpc_id}",
                )
            )
    if found:
        _check_security_groups(found, catalog, problems)

    for role, ids, use_case in (
        ("rest_api", rest_api, "WORKSPACE_ACCESS"),
        ("dataplane_relay", dataplane_relay, "DATAPLANE_RELAY_ACCESS"),
    ):
        for endpoint_id in ids:
            facts = endpoint(endpoint_id)
            if facts is None:
                problems.append(
                    NetworkProblem("vpc", f"VPC endpoint {endpoint_id} ({role}) is not registered")
                )
                continue
            if facts.region != region:
                problems.append(
                    NetworkProblem(
                        "vpc", f"VPC endpoint {endpoint_id} ({role}) is in {facts.region}, not in {region}"
                    )
                )
            if facts.use_case != use_case:
                problems.append(
                    NetworkProblem(
                        "vpc",
                        f"VPC endpoint {endpoint_id} is used as {role} but its use case is {facts.use_case}, "
                        f"not {use_case}",
                    )
                )
            if facts.state != "available":
                problems.append(
                    NetworkProblem(
                        "vpc",
                        f"VPC endpoint {endpoint_id} ({facts.aws_vpc_endpoint_id}) is {facts.state}, "
                        "not available",
                    )
                )
    return problems
