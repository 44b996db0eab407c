"""The repairs a remediation makes before the reconcile: exactly what preflight requires, nothing more."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dbx_privatelink.aws.ec2 import SecurityGroupInfo, SgRule, VpcInfo
from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.drift.prerequisites import prerequisite_repairs
from dbx_privatelink.drift.remediation import REPAIR_TAG_KEY, _repair_prerequisites
from dbx_privatelink.errors import AwsAccessDeniedError, SpecInvalidError
from dbx_privatelink.reconcile.shared import RESTORED_RULE_DESCRIPTION
from dbx_privatelink.spec import WorkspaceSpec, parse_spec

WS_SG, EP_SG, VPC = "sg-0a1b2c3d4e5f60711", "sg-0a1b2c3d4e5f60712", "vpc-0a1b2c3d4e5f60718"
STANDBY_SG = "sg-0a1b2c3d4e5f60713"
CATALOG = default_catalog()


def _spec(*, standby: bool = False) -> WorkspaceSpec:
    doc: dict[str, Any] = {
        "workspace_key": "ws-a",
        "region": "us-east-1",
        "databricks": {
            "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "credentials_id": "c",
            "storage_configuration_id": "s",
            "workspace": {"name": "ws-a"},
        },
        "network": {
            "vpc_id": VPC,
            "workspace_subnet_ids": ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60712"],
            "workspace_security_group_ids": [WS_SG],
            "endpoint_subnet_ids": ["subnet-0a1b2c3d4e5f60713"],
            "endpoint_security_group_id": EP_SG,
        },
    }
    if standby:
        doc["network"]["standby"] = {
            "workspace_subnet_ids": ["subnet-0a1b2c3d4e5f60714", "subnet-0a1b2c3d4e5f60715"],
            "workspace_security_group_ids": [STANDBY_SG],
        }
    return parse_spec(doc)


def _healthy_groups() -> tuple[SecurityGroupInfo, SecurityGroupInfo]:
    within = tuple(SgRule(protocol=p, from_port=0, to_port=65535, group_ids=(WS_SG,)) for p in ("tcp", "udp"))
    egress = tuple(
        SgRule(protocol="tcp", from_port=lo, to_port=hi, cidrs=("0.0.0.0/0",))
        for lo, hi in port_ranges(CATALOG.workspace_sg_egress_tcp_ports)
    )
    ws = SecurityGroupInfo(group_id=WS_SG, vpc_id=VPC, ingress=within, egress=within + egress)
    ep_rules = tuple(
        SgRule(protocol="tcp", from_port=lo, to_port=hi, cidrs=("10.0.0.0/22",))
        for lo, hi in port_ranges(CATALOG.endpoint_sg_ingress_tcp_ports)
    )
    ep = SecurityGroupInfo(group_id=EP_SG, vpc_id=VPC, ingress=ep_rules, egress=ep_rules)
    return ws, ep


VPC_OK = VpcInfo(vpc_id=VPC, cidr_block="10.0.0.0/22", dns_support=True, dns_hostnames=True)


def test_a_healthy_network_needs_no_repair() -> None:
    assert prerequisite_repairs(_spec(), VPC_OK, list(_healthy_groups()), CATALOG) == []


def test_revoked_rules_and_attributes_are_restored_from_the_requirements() -> None:
    ws, ep = _healthy_groups()
    ws = ws.model_copy(update={"ingress": tuple(r for r in ws.ingress if r.protocol != "udp")})
    first_lo, first_hi = port_ranges(CATALOG.endpoint_sg_ingress_tcp_ports)[0]
    ep = ep.model_copy(update={"ingress": ep.ingress[1:]})
    vpc = VPC_OK.model_copy(update={"dns_hostnames": False})
    repairs = prerequisite_repairs(_spec(), vpc, [ws, ep], CATALOG)
    assert [(r.kind, r.target, r.direction or r.attribute) for r in repairs] == [
        ("vpc_attribute", VPC, "enableDnsHostnames"),
        ("rule", WS_SG, "ingress"),
        ("rule", EP_SG, "ingress"),
    ]
    assert repairs[1].permission == {
        "IpProtocol": "udp",
        "FromPort": 0,
        "ToPort": 65535,
        "UserIdGroupPairs": [{"GroupId": WS_SG, "Description": RESTORED_RULE_DESCRIPTION}],
    }
    assert repairs[2].permission == {
        "IpProtocol": "tcp",
        "FromPort": first_lo,
        "ToPort": first_hi,
        "IpRanges": [{"CidrIp": "10.0.0.0/22", "Description": RESTORED_RULE_DESCRIPTION}],
    }


def test_a_deleted_vpc_or_a_group_elsewhere_is_left_to_a_human() -> None:
    ws, ep = _healthy_groups()
    assert prerequisite_repairs(_spec(), None, [ws, ep], CATALOG) == []
    moved = ep.model_copy(update={"vpc_id": "vpc-0ffffffffffffffff", "ingress": ()})
    assert prerequisite_repairs(_spec(), VPC_OK, [ws, moved], CATALOG) == []


def _workspace_group(group_id: str) -> SecurityGroupInfo:
    ws, _ = _healthy_groups()
    within = tuple(r.model_copy(update={"group_ids": (group_id,)}) if r.group_ids else r for r in ws.ingress)
    egress = tuple(r.model_copy(update={"group_ids": (group_id,)}) if r.group_ids else r for r in ws.egress)
    return ws.model_copy(update={"group_id": group_id, "ingress": within, "egress": egress})


def test_the_standby_group_is_repaired_like_the_primary_one() -> None:
    # Given a spec with a standby set whose group lost its UDP-within rule
    ws, ep = _healthy_groups()
    standby = _workspace_group(STANDBY_SG)
    assert prerequisite_repairs(_spec(standby=True), VPC_OK, [ws, standby, ep], CATALOG) == []
    broken = standby.model_copy(update={"ingress": tuple(r for r in standby.ingress if r.protocol != "udp")})
    # Then the repair restores it (preflight checks the standby set too)
    [repair] = prerequisite_repairs(_spec(standby=True), VPC_OK, [ws, broken, ep], CATALOG)
    assert (repair.target, repair.direction) == (STANDBY_SG, "ingress")
    assert repair.permission["UserIdGroupPairs"] == [
        {"GroupId": STANDBY_SG, "Description": RESTORED_RULE_DESCRIPTION}
    ]


def test_an_endpoint_group_that_admits_only_the_primary_group_is_opened_to_the_vpc() -> None:
    # Given endpoint ingress from the primary workspace group only (no CIDR rule)
    ws, ep = _healthy_groups()
    from_primary = tuple(r.model_copy(update={"cidrs": (), "group_ids": (WS_SG,)}) for r in ep.ingress)
    ep = ep.model_copy(update={"ingress": from_primary})
    groups = [ws, _workspace_group(STANDBY_SG), ep]
    # Then that is enough without a standby set, and with one the VPC CIDR is let in for every port
    assert prerequisite_repairs(_spec(), VPC_OK, groups, CATALOG) == []
    repairs = prerequisite_repairs(_spec(standby=True), VPC_OK, groups, CATALOG)
    assert [r.target for r in repairs] == [EP_SG] * len(port_ranges(CATALOG.endpoint_sg_ingress_tcp_ports))
    assert all(
        r.permission["IpRanges"] == [{"CidrIp": "10.0.0.0/22", "Description": RESTORED_RULE_DESCRIPTION}]
        for r in repairs
    )


class _ReadEc2:
    def __init__(self, vpc: VpcInfo, groups: list[SecurityGroupInfo]) -> None:
        self.vpc, self.groups = vpc, groups

    def get_vpc(self, vpc_id: str) -> VpcInfo:
        return self.vpc

    def get_security_groups(self, ids: list[str]) -> list[SecurityGroupInfo]:
        return [g for g in self.groups if g.group_id in ids]


class _TaggedWriter:
    """EC2 as the template's policy lets the drift roles write: only to resources tagged repair=<stack>."""

    def __init__(self, tagged: set[str]) -> None:
        self.tagged, self.calls = tagged, []  # type: list[str]

    def _check(self, target: str, operation: str) -> None:
        if target not in self.tagged:
            raise AwsAccessDeniedError(f"{operation} failed: UnauthorizedOperation: not authorized")
        self.calls.append(f"{operation} {target}")

    def enable_vpc_attribute(self, vpc_id: str, attribute: str) -> None:
        self._check(vpc_id, "ModifyVpcAttribute")

    def authorize(self, group_id: str, direction: str, permission: dict[str, Any]) -> bool:
        self._check(group_id, "AuthorizeSecurityGroup" + direction.capitalize())
        return True


def test_a_repair_the_role_may_not_make_is_listed_as_not_done_with_the_tag_to_set() -> None:
    # Given a VPC with DNS hostnames off and a workspace group that lost its UDP rule, where only the group
    # carries dbx-privatelink:repair=<stack>
    ws, ep = _healthy_groups()
    ws = ws.model_copy(update={"ingress": tuple(r for r in ws.ingress if r.protocol != "udp")})
    vpc = VPC_OK.model_copy(update={"dns_hostnames": False})
    writer = _TaggedWriter({WS_SG})
    deps = SimpleNamespace(
        settings=SimpleNamespace(owner_tag="dbx-privatelink"),
        catalog=CATALOG,
        ec2=lambda region: _ReadEc2(vpc, [ws, ep]),
        drift_ec2=lambda region: writer,
    )
    # When the remediation repairs the prerequisites
    done = _repair_prerequisites(deps, _spec().model_dump(mode="json"))  # type: ignore[arg-type]
    # Then the group is repaired, and the VPC is named with the tag that would let the repair happen
    assert writer.calls == [f"AuthorizeSecurityGroupIngress {WS_SG}"]
    [vpc_line, group_line] = done
    assert (
        vpc_line.startswith("not done: ")
        and f"{VPC} is not tagged {REPAIR_TAG_KEY}=dbx-privatelink" in vpc_line
    )
    assert not group_line.startswith("not done")


def test_a_stored_spec_whose_network_section_is_broken_is_refused_naming_the_field() -> None:
    # Given a stored spec whose endpoint subnet is also a workspace subnet, and one without a network section
    broken = _spec().model_dump(mode="json")
    broken["network"]["endpoint_subnet_ids"] = broken["network"]["workspace_subnet_ids"][:1]
    missing = {k: v for k, v in _spec().model_dump(mode="json").items() if k != "network"}
    deps = SimpleNamespace(settings=SimpleNamespace(owner_tag="dbx-privatelink"), catalog=CATALOG)
    # When the remediation reads them to repair the prerequisites
    # Then it refuses each before any call, naming the field (the repair reads the region and network only)
    with pytest.raises(
        SpecInvalidError, match=r"network: .*endpoint_subnet_ids .* are also workspace subnets"
    ):
        _repair_prerequisites(deps, broken)  # type: ignore[arg-type]
    with pytest.raises(SpecInvalidError, match="network: required field is missing: add it"):
        _repair_prerequisites(deps, missing)  # type: ignore[arg-type]
