"""The decisions plan, preflight and the steps share: what exists is kept, adopted, changed or made, and
what would stop a step is named before any change."""

from __future__ import annotations

from typing import Any

import pytest

from dbx_privatelink.aws.ec2 import VpcInfo
from dbx_privatelink.aws.resolver_types import (
    GroupRule,
    ResolverEndpointInfo,
    ResolverRuleInfo,
    RuleAssociationInfo,
    SecurityGroupRef,
    TargetIp,
)
from dbx_privatelink.databricks.models import Network, Workspace
from dbx_privatelink.errors import PreflightFailedError
from dbx_privatelink.reconcile.databricks_objects import foreign_network_problems
from dbx_privatelink.reconcile.dns import (
    OWNER_TAG_KEY,
    ROLE_TAG_KEY,
    SCOPE_TAG_KEY,
    WantedEndpoint,
    decide_association,
    decide_group,
    endpoint_repairs,
    find_endpoint,
    find_rule,
)
from dbx_privatelink.reconcile.dns_rules import WantedRule, rule_drift
from dbx_privatelink.reconcile.preflight import assess
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink.wiring import Deps, Settings

OWNER = "dbx-privatelink"
VPC = VpcInfo.model_validate(
    {
        "vpc_id": "vpc-0d0d0d0d0d0d0d0d0",
        "cidr_block": "10.10.0.0/16",
        "dns_support": True,
        "dns_hostnames": True,
    }
)
OUTBOUND = WantedEndpoint(
    "outbound",
    "OUTBOUND",
    VPC.vpc_id,
    ("subnet-0d0d0d0d0d0d0d0d1", "subnet-0d0d0d0d0d0d0d0d2"),
    None,
    (),
    "dns.custom_dns",
    egress_to=("10.10.0.53/32",),
)
INBOUND = WantedEndpoint(
    "inbound", "INBOUND", VPC.vpc_id, OUTBOUND.subnet_ids, None, ("10.20.0.0/24",), "dns.inbound"
)
ALL_OUT = GroupRule(direction="egress", protocol="-1", from_port=None, to_port=None, cidr="0.0.0.0/0")


def _dns(direction: str, cidr: str, protocol: str = "udp") -> GroupRule:
    return GroupRule(direction=direction, protocol=protocol, from_port=53, to_port=53, cidr=cidr)  # type: ignore[arg-type]


def _group(*rules: GroupRule, owner: str = OWNER) -> SecurityGroupRef:
    return SecurityGroupRef(
        group_id="sg-0123456789abcdef0",
        vpc_id=VPC.vpc_id,
        name="dbx-privatelink-resolver-outbound",
        tags={OWNER_TAG_KEY: owner},
        ingress=tuple(r for r in rules if r.direction == "ingress"),
        egress=tuple(r for r in rules if r.direction == "egress"),
    )


def _endpoint(
    endpoint_id: str, *, status: str = "OPERATIONAL", request_id: str = "", **kw: Any
) -> ResolverEndpointInfo:
    return ResolverEndpointInfo(
        resolver_endpoint_id=endpoint_id,
        arn=f"arn:{endpoint_id}",
        direction="OUTBOUND",
        vpc_id=VPC.vpc_id,
        status=status,
        creator_request_id=request_id,
        **kw,
    )


def test_a_new_outbound_group_loses_the_all_traffic_rule_and_gains_dns_to_the_targets() -> None:
    # When no group of our name exists yet
    decision = decide_group(OUTBOUND, VPC, None, OWNER)
    # Then it is created, EC2's default egress revoked and DNS out to the corporate server authorized
    assert decision.action == "create"
    assert set(decision.missing) == {_dns("egress", "10.10.0.53/32", p) for p in ("tcp", "udp")}
    assert decision.extra == (ALL_OUT,)
    assert decision.calls() == [
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupEgress",
    ]


def test_a_group_as_wanted_is_kept_and_one_of_a_stranger_is_a_conflict() -> None:
    # Given our group with exactly the wanted rules, and the same group not tagged ours
    wanted = [_dns("egress", "10.10.0.53/32", p) for p in ("tcp", "udp")]
    # Then ours is kept with no call, the stranger's is a conflict naming the fix
    assert decide_group(OUTBOUND, VPC, _group(*wanted), OWNER).calls() == []
    assert decide_group(OUTBOUND, VPC, _group(*wanted), OWNER).action == "keep"
    stranger = decide_group(OUTBOUND, VPC, _group(*wanted, owner="someone"), OWNER)
    assert stranger.action == "error" and "name the group in the spec" in stranger.conflict


def test_the_inbound_group_keeps_dns_from_other_workspaces_and_drops_the_rest() -> None:
    # Given the shared inbound group with another workspace's DNS rule and a stray SSH rule
    other = _dns("ingress", "192.168.0.0/16")
    ssh = GroupRule(direction="ingress", protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0")
    decision = decide_group(INBOUND, VPC, _group(other, ssh, ALL_OUT), OWNER)
    # Then this spec's networks are added, the other workspace's DNS stays, SSH goes, egress is untouched
    assert decision.action == "change"
    assert set(decision.missing) == {_dns("ingress", "10.20.0.0/24", p) for p in ("tcp", "udp")}
    assert decision.extra == (ssh,)
    assert decision.calls() == ["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"]


def test_an_endpoint_is_found_by_tags_adopted_by_request_id_and_never_one_being_deleted() -> None:
    tags = {
        "arn:rslvr-out-1": {OWNER_TAG_KEY: OWNER, ROLE_TAG_KEY: "outbound"},
        "arn:rslvr-out-0": {OWNER_TAG_KEY: OWNER, ROLE_TAG_KEY: "outbound"},
    }
    deleting = _endpoint("rslvr-out-0", status="DELETING")
    ours = _endpoint("rslvr-out-1")
    by_token = _endpoint("rslvr-out-2", request_id="dbxpl-abc-1")
    # Then ours by tag wins over one made with our request id; the deleting one is never taken
    assert find_endpoint(
        [deleting, by_token, ours], lambda arn: tags.get(arn, {}), OUTBOUND, OWNER, "dbxpl-abc"
    ) == (
        ours,
        "found",
    )
    assert find_endpoint(
        [deleting, by_token], lambda arn: tags.get(arn, {}), OUTBOUND, OWNER, "dbxpl-abc"
    ) == (
        by_token,
        "adopted",
    )
    assert find_endpoint([deleting], lambda arn: tags.get(arn, {}), OUTBOUND, OWNER, "dbxpl-abc") is None


def test_an_endpoint_that_lost_an_ip_and_do53_is_repaired_with_one_call_each() -> None:
    # Given an endpoint with an IP in one of the two subnets only, switched to DoH
    info = _endpoint("rslvr-out-1", protocols=("DoH",))
    repairs = endpoint_repairs(OUTBOUND, info, {OUTBOUND.subnet_ids[0]})
    # Then
    assert repairs.missing_subnets == (OUTBOUND.subnet_ids[1],)
    assert repairs.calls() == ["AssociateResolverEndpointIpAddress", "UpdateResolverEndpoint"]
    assert endpoint_repairs(OUTBOUND, _endpoint("rslvr-out-1"), set(OUTBOUND.subnet_ids)).calls() == []


def _rule(
    rule_id: str, domain: str, *targets: str, endpoint: str | None = "rslvr-out-1", request_id: str = ""
) -> ResolverRuleInfo:
    return ResolverRuleInfo(
        resolver_rule_id=rule_id,
        arn=f"arn:{rule_id}",
        domain=domain,
        rule_type="FORWARD",
        target_ips=tuple(TargetIp(ip=t) for t in targets),
        resolver_endpoint_id=endpoint,
        owner_id="123456789012",
        creator_request_id=request_id,
    )


FORWARD_ALL = WantedRule(
    "forward-all", ".", "FORWARD", VPC.vpc_id, "rslvr-out-1", (TargetIp(ip="10.10.0.53"),)
)


def test_a_rule_is_found_by_tags_or_adopted_and_updated_when_its_targets_drifted() -> None:
    ours = _rule("rslvr-rr-1", ".", "10.10.0.99")
    tags = {"arn:rslvr-rr-1": {OWNER_TAG_KEY: OWNER, ROLE_TAG_KEY: "forward-all", SCOPE_TAG_KEY: VPC.vpc_id}}
    # Then ours is found, and its changed target is drift to update
    assert find_rule([ours], lambda arn: tags.get(arn, {}), FORWARD_ALL, OWNER, "dbxpl-x") == (ours, "found")
    assert rule_drift(FORWARD_ALL, ours) == "forwards to 10.10.0.99:53, not 10.10.0.53:53"
    assert rule_drift(FORWARD_ALL, _rule("rslvr-rr-1", ".", "10.10.0.53")) == ""
    # and a hand-made rule through our endpoint is adopted; another domain's never
    by_hand = _rule("rslvr-rr-2", ".", "10.10.0.53")
    assert find_rule([by_hand], lambda arn: {}, FORWARD_ALL, OWNER, "dbxpl-x") == (by_hand, "adopted")
    assert (
        find_rule([_rule("rslvr-rr-3", "corp.example")], lambda arn: {}, FORWARD_ALL, OWNER, "dbxpl-x")
        is None
    )


def _association(rule_id: str, status: str = "COMPLETE") -> RuleAssociationInfo:
    return RuleAssociationInfo(
        association_id=f"rslvr-rrassoc-{rule_id}", resolver_rule_id=rule_id, vpc_id="vpc-1", status=status
    )


def test_an_association_is_kept_made_waited_for_or_refused_when_another_rule_holds_the_domain() -> None:
    rules = {"rslvr-rr-1": _rule("rslvr-rr-1", "."), "rslvr-rr-9": _rule("rslvr-rr-9", ".")}
    # Then
    kept = decide_association("rslvr-rr-1", ".", "vpc-1", [_association("rslvr-rr-1")], rules)
    assert (kept.action, kept.calls()) == ("keep", [])
    made = decide_association("rslvr-rr-1", ".", "vpc-1", [], rules)
    assert (made.action, made.calls()) == ("create", ["AssociateResolverRule"])
    busy = decide_association("rslvr-rr-1", ".", "vpc-1", [_association("rslvr-rr-1", "DELETING")], rules)
    assert busy.busy and busy.calls() == []
    clash = decide_association("(new)", ".", "vpc-1", [_association("rslvr-rr-9")], rules)
    assert clash.action == "error" and "already has rule rslvr-rr-9 for '.'" in clash.conflict


def _spec() -> WorkspaceSpec:
    return parse_spec(
        {
            "workspace_key": "acme",
            "region": "us-east-1",
            "databricks": {
                "account_id": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
                "credentials_id": "cred-1",
                "storage_configuration_id": "storage-1",
                "workspace": {"name": "acme"},
            },
            "network": {
                "vpc_id": "vpc-0a1b2c3d4e5f60718",
                "workspace_subnet_ids": ["subnet-0aa11bb22cc33dd44", "subnet-0ee55ff66aa77bb88"],
                "workspace_security_group_ids": ["sg-0123456789abcdef0"],
                "endpoint_subnet_ids": ["subnet-0123456789abcdef0"],
                "endpoint_security_group_id": "sg-0fedcba9876543210",
            },
        }
    )


def _network(
    network_id: str, name: str, subnets: list[str], groups: list[str], workspace: int | None = None
) -> Network:
    return Network(
        network_id=network_id,
        network_name=name,
        subnet_ids=subnets,
        security_group_ids=groups,
        workspace_id=workspace,
    )


def test_subnets_and_groups_of_another_network_are_named_and_the_workspaces_own_are_not() -> None:
    spec = _spec()
    theirs = _network("net-9", "other-net", ["subnet-0aa11bb22cc33dd44"], ["sg-0123456789abcdef0"], 42)
    ours = _network(
        "net-1", "acme-network-1234abcd", spec.network.workspace_subnet_ids, ["sg-0123456789abcdef0"]
    )
    retrofitted = _network("net-2", "made-by-hand", ["subnet-0ee55ff66aa77bb88"], [])
    workspace = Workspace(workspace_id=7, workspace_name="acme", network_id="net-2")
    # When the networks of the account are compared with the spec
    problems = foreign_network_problems(spec, [theirs, ours, retrofitted], workspace)
    # Then only the other workspace's network is named, with each id it holds and the fix
    assert problems == [
        "network.workspace_subnet_ids: subnet-0aa11bb22cc33dd44 is already used by Databricks network net-9 "
        "(other-net, workspace 42); a subnet or security group serves one network object only: use subnets and "
        "groups of their own for this workspace, or delete that network",
        "network.workspace_security_group_ids: sg-0123456789abcdef0 is already used by Databricks network net-9 "
        "(other-net, workspace 42); a subnet or security group serves one network object only: use subnets and "
        "groups of their own for this workspace, or delete that network",
    ]


def test_a_region_databricks_does_not_serve_is_named_with_the_supported_ones_not_a_stack_to_deploy() -> None:
    # Given a spec for af-south-1 (no Databricks PrivateLink there) and a stack in us-east-1
    spec = parse_spec({**_spec().model_dump(mode="json", exclude_none=True), "region": "af-south-1"})
    deps = Deps(settings=Settings(region="us-east-1", owner_tag=OWNER))
    # When preflight assesses it (before any AWS call)
    with pytest.raises(PreflightFailedError) as failed:
        assess(spec, deps)
    # Then it lists the supported regions and does not advise deploying the stack in af-south-1
    message = str(failed.value)
    assert "no PrivateLink endpoint services in af-south-1" in message
    assert "us-east-1" in message and "eu-west-1" in message
    assert "deploy the stack" not in message
