"""What preflight requires of the customer's network, as repairs: the rules and VPC attributes to restore.

It mirrors preflight's checks (the same catalog, the same notion of "allows"), so a workspace whose
prerequisites were restored passes preflight, and the reconcile that follows can end SUCCEEDED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

# Preflight's own predicates: the repair must agree with the check exactly.
from dbx_privatelink.catalog import port_ranges
from dbx_privatelink.reconcile.group_rules import (
    allows_all_within_group,
    allows_egress_beyond_group,
    allows_endpoint_ingress,
)
from dbx_privatelink.reconcile.shared import RESTORED_RULE_DESCRIPTION

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import SecurityGroupInfo, VpcInfo
    from dbx_privatelink.catalog import Catalog
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.spec_sections import SpecNetwork, WorkspaceSet


class Repair(NamedTuple):
    """One change that restores a requirement."""

    kind: str  # rule | vpc_attribute
    target: str  # the group or VPC id
    text: str
    direction: str  # a rule's ("" for a VPC attribute)
    permission: dict[str, Any]  # a rule's IpPermission ({} for a VPC attribute)
    attribute: str = ""


def _self_rule(group_id: str, protocol: str) -> dict[str, Any]:
    return {
        "IpProtocol": protocol,
        "FromPort": 0,
        "ToPort": 65535,
        "UserIdGroupPairs": [{"GroupId": group_id, "Description": RESTORED_RULE_DESCRIPTION}],
    }


def _tcp(lo: int, hi: int, cidr: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": lo,
        "ToPort": hi,
        "IpRanges": [{"CidrIp": cidr, "Description": RESTORED_RULE_DESCRIPTION}],
    }


def workspace_group_repairs(sg: SecurityGroupInfo, catalog: Catalog) -> list[Repair]:
    """All TCP/UDP within the group both ways, and the control-plane egress ports."""
    repairs: list[Repair] = []
    for direction in ("ingress", "egress"):
        for protocol in ("tcp", "udp"):
            if not allows_all_within_group(sg, direction, protocol):
                repairs.append(
                    Repair(
                        "rule",
                        sg.group_id,
                        f"{sg.group_id}: allow all {protocol.upper()} {direction} within the group",
                        direction,
                        _self_rule(sg.group_id, protocol),
                    )
                )
    for lo, hi in port_ranges(catalog.workspace_sg_egress_tcp_ports):
        if not all(allows_egress_beyond_group(sg, "tcp", p) for p in (lo, hi)):
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            repairs.append(
                Repair(
                    "rule",
                    sg.group_id,
                    f"{sg.group_id}: allow egress TCP {ports} to 0.0.0.0/0",
                    "egress",
                    _tcp(lo, hi, "0.0.0.0/0"),
                )
            )
    return repairs


def endpoint_group_repairs(
    sg: SecurityGroupInfo, catalog: Catalog, workspace_sets: list[WorkspaceSet], vpc: VpcInfo
) -> list[Repair]:
    """The endpoint ports from the VPC (never from 0.0.0.0/0: preflight refuses that), wherever the groups
    of a workspace set are not let in."""
    repairs: list[Repair] = []
    for lo, hi in port_ranges(catalog.endpoint_sg_ingress_tcp_ports):
        if not all(allows_endpoint_ingress(sg, lo, ws.security_group_ids) for ws in workspace_sets):
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            repairs.append(
                Repair(
                    "rule",
                    sg.group_id,
                    f"{sg.group_id}: allow ingress TCP {ports} from {vpc.cidr_block}",
                    "ingress",
                    _tcp(lo, hi, vpc.cidr_block),
                )
            )
    return repairs


def vpc_repairs(vpc: VpcInfo) -> list[Repair]:
    repairs = []
    if not vpc.dns_support:
        repairs.append(
            Repair(
                "vpc_attribute",
                vpc.vpc_id,
                f"{vpc.vpc_id}: turn enableDnsSupport on",
                direction="",
                permission={},
                attribute="enableDnsSupport",
            )
        )
    if not vpc.dns_hostnames:
        repairs.append(
            Repair(
                "vpc_attribute",
                vpc.vpc_id,
                f"{vpc.vpc_id}: turn enableDnsHostnames on",
                direction="",
                permission={},
                attribute="enableDnsHostnames",
            )
        )
    return repairs


def prerequisite_repairs(
    spec: SpecNetwork | WorkspaceSpec,
    vpc: VpcInfo | None,
    groups: list[SecurityGroupInfo],
    catalog: Catalog,
) -> list[Repair]:
    """Every repair the spec's data-plane VPC and security groups need to pass preflight again."""
    if vpc is None:
        return []  # a deleted VPC is not something to recreate: preflight names it, a human decides
    net = spec.network
    by_id = {g.group_id: g for g in groups if g.vpc_id == net.vpc_id}
    repairs = vpc_repairs(vpc)
    # Both workspace sets: preflight checks the standby set too, and a replacement must find it ready.
    for gid in net.all_workspace_security_group_ids():
        if gid in by_id:
            repairs += workspace_group_repairs(by_id[gid], catalog)
    if net.endpoint_security_group_id in by_id:
        repairs += endpoint_group_repairs(
            by_id[net.endpoint_security_group_id], catalog, net.workspace_sets(), vpc
        )
    return repairs
