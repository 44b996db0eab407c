"""Preflight's reading of security-group rules matches what Databricks validates."""

from __future__ import annotations

from dbx_privatelink.aws.ec2 import SecurityGroupInfo, SgRule
from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.reconcile.preflight import _check_workspace_sg

SG = "sg-0c0ffee0c0ffee001"
SELF = [SgRule(protocol=p, from_port=0, to_port=65535, group_ids=(SG,)) for p in ("tcp", "udp")]


def _required(**target: tuple[str, ...]) -> list[SgRule]:
    return [
        SgRule(protocol="tcp", from_port=lo, to_port=hi, **target)
        for lo, hi in port_ranges(default_catalog().workspace_sg_egress_tcp_ports)
    ]


def _problems(egress: list[SgRule]) -> list[str]:
    problems: list[str] = []
    _check_workspace_sg(
        SecurityGroupInfo(group_id=SG, vpc_id="vpc-1", ingress=tuple(SELF), egress=tuple(egress)),
        default_catalog(),
        problems,
    )
    return problems


def test_the_walkthrough_group_passes() -> None:
    assert _problems([*SELF, *_required(cidrs=("0.0.0.0/0",))]) == []


def test_egress_to_a_prefix_list_counts() -> None:
    assert _problems([*SELF, *_required(prefix_list_ids=("pl-0123456789abcdef0",))]) == []


def test_all_traffic_to_itself_does_not_open_the_control_plane_ports() -> None:
    # Given only the self rules, when 443 to the internet is revoked, then preflight names port 443
    egress = [*SELF, *(r for r in _required(cidrs=("0.0.0.0/0",)) if r.from_port != 443)]
    problems = _problems(egress)
    assert any("egress TCP 443" in p for p in problems), problems


def test_missing_self_rules_are_named() -> None:
    problems = _problems(_required(cidrs=("0.0.0.0/0",)))
    assert any("TCP egress to and from itself" in p for p in problems), problems
