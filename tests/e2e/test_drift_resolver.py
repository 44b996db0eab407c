"""Drift of the custom-DNS resources end to end on the local stack: a human changes a Route 53 Resolver rule,
endpoint or security group by hand, the local CloudTrail reports it, the detector records it against the
workspace, and a reconcile execution puts it back (VerifyDns passing again).

The DNS VPC's outbound endpoint, its security group and the "." rule are shared by every workspace with
custom DNS in that VPC (README, Known limits): a change to them is drift of each of those workspaces, and
each one's repair runs. The assertions are about this test's workspace; each test ends once no execution
of the state machine runs any more, so the next test starts from a quiet stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dbx_privatelink.drift_store import DriftRecord
from dbx_privatelink.store import StoreClient
from dbx_privatelink_local.seed import CORPORATE_CHECK, DataPlane
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, listed, spec_for
from .test_custom_dns import RESOLVER_WRITES, _custom_dns, private_zone
from .test_drift import Drift, _app_role_events, drift, scheduled_scan_off, wait_for

pytestmark = pytest.mark.e2e

__all__ = ["drift", "scheduled_scan_off"]  # fixtures shared with test_drift.py

WRONG_TARGET = "10.99.99.99"  # private, but no DNS server answers there
HANDLED = ("remediation_started", "coalesced", "repaired")  # repaired: its run SUCCEEDED


@pytest.fixture
def dns_workspace(
    stack: LocalStack,
    reconciler: Reconciler,
    data_plane: DataPlane,
    drift: Drift,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """A reconciled workspace whose spec has custom DNS (the seeded DNS VPC): (spec, the run's DNS summary)."""
    key = "r-" + request.node.name.replace("_", "-").removeprefix("test-")[:30].strip("-")
    spec = spec_for(stack, data_plane, key)
    spec["dns"] = _custom_dns(stack, data_plane)
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["summary"]["dns"]["verification"]["status"] == "verified"
    drift.deliver()  # the reconcile's own calls: they must start nothing
    yield spec, run.output["summary"]["dns"]
    stack.aws.cloudtrail.resume()
    _quiet(stack, drift)


def _quiet(stack: LocalStack, drift: Drift, timeout: float = 90.0) -> None:
    """Until every queued event was delivered and no execution of the state machine runs."""
    for _ in range(3):
        drift.deliver()
        wait_for(
            lambda: (
                not drift.sfn.list_executions(stateMachineArn=drift.machine, statusFilter="RUNNING")[
                    "executions"
                ]
            ),
            timeout,
            "no execution running",
        )
        time.sleep(0.2)


def _human(stack: LocalStack) -> Any:
    """The operator's Route 53 Resolver client (the stack's default credentials: an IAM user)."""
    stack.aws.cloudtrail.pause()  # every event of the change reaches the detector together, when flushed
    return stack.client("route53resolver")


def _record(drift: Drift, key: str, event_name: str) -> DriftRecord:
    """The workspace's drift record of `event_name`, once it was handled (a repair started or joined)."""
    found = wait_for(
        lambda: [r for r in drift.records(key) if r.event_name == event_name and r.outcome in HANDLED],
        30,
        f"a drift record of {event_name} for {key}",
    )
    record: DriftRecord = found[0]
    assert record.source == "cloudtrail" and record.actor.endswith(":user/operator"), record
    assert record.event_time and record.summary, record
    return record


def _repaired(stack: LocalStack, drift: Drift, key: str) -> list[dict[str, Any]]:
    """Every remediation of `key` SUCCEEDED; returns their outputs, newest last. The last one verified DNS."""
    _quiet(stack, drift)
    runs = sorted(drift.remediations(key), key=lambda e: e["startDate"])
    assert runs, f"no remediation of {key}"
    outputs = []
    for e in runs:
        drift.succeeded(e["executionArn"])
        described = drift.sfn.describe_execution(executionArn=e["executionArn"])
        outputs.append(json.loads(described.get("output") or "{}"))
    verification = outputs[-1]["summary"]["dns"]["verification"]
    assert verification["status"] == "verified", verification
    return outputs


def _dot_rule(stack: LocalStack) -> dict[str, Any]:
    """The "." rule of the seeded DNS VPC (other tests of the session make their own DNS VPCs)."""
    env = stack.environment
    assert env is not None
    r53r = stack.client("route53resolver")
    outbound = {
        e["Id"]
        for e in listed(r53r, "list_resolver_endpoints", "ResolverEndpoints")
        if e["HostVPCId"] == env.dns_vpc_id and e["Direction"] == "OUTBOUND"
    }
    rules = listed(r53r, "list_resolver_rules", "ResolverRules")
    [dot] = [
        r
        for r in rules
        if r["DomainName"].rstrip(".") == ""
        and r["RuleType"] == "FORWARD"
        and r.get("ResolverEndpointId") in outbound
    ]
    return dot


def _associated(stack: LocalStack, rule_id: str, vpc_id: str) -> bool:
    found = stack.client("route53resolver").list_resolver_rule_associations(
        Filters=[{"Name": "VPCId", "Values": [vpc_id]}, {"Name": "ResolverRuleId", "Values": [rule_id]}]
    )["ResolverRuleAssociations"]
    return any(a["Status"] == "COMPLETE" for a in found)


def _delete_rule_by_hand(r53r: Any, rule_id: str) -> None:
    """AWS refuses to delete an associated rule: disassociate it from every VPC first and wait until the
    associations have left DELETING, as a human must."""

    def associations() -> list[dict[str, Any]]:
        return list(
            r53r.list_resolver_rule_associations(Filters=[{"Name": "ResolverRuleId", "Values": [rule_id]}])[
                "ResolverRuleAssociations"
            ]
        )

    for a in associations():
        r53r.disassociate_resolver_rule(ResolverRuleId=rule_id, VPCId=a["VPCId"])
    wait_for(lambda: not associations(), what=f"the associations of {rule_id} gone")
    r53r.delete_resolver_rule(ResolverRuleId=rule_id)


def _endpoint_ips(stack: LocalStack, endpoint_id: str) -> list[dict[str, Any]]:
    return list(
        stack.client("route53resolver").list_resolver_endpoint_ip_addresses(ResolverEndpointId=endpoint_id)[
            "IpAddresses"
        ]
    )


def _azs(stack: LocalStack, subnet_ids: list[str]) -> set[str]:
    subnets = stack.client("ec2").describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    return {s["AvailabilityZone"] for s in subnets}


# --- rules ------------------------------------------------------------------------------------------


def test_the_dot_rule_deleted_by_hand_is_created_again_and_associated(
    stack: LocalStack,
    drift: Drift,
    dns_workspace: tuple[dict[str, Any], dict[str, Any]],
    data_plane: DataPlane,
) -> None:
    spec, dns = dns_workspace
    key, old_rule = spec["workspace_key"], dns["forward_rule_id"]
    env = stack.environment
    assert env is not None
    # Given a workspace with custom DNS; when a human disassociates the "." rule and deletes it
    r53r = _human(stack)
    _delete_rule_by_hand(r53r, old_rule)
    assert "DeleteResolverRule" in stack.aws.cloudtrail.pending(), "CloudTrail reports it (late)"
    drift.deliver()
    # Then the deletion is recorded against the workspace with what, who and when
    record = _record(drift, key, "DeleteResolverRule")
    assert old_rule in record.resource_ids and "delete resolver rule" in record.summary
    # And a reconcile creates a new "." rule (a new CreatorRequestId: the deleted one's stays spent),
    # forwarding to the corporate servers through the outbound endpoint, associated with the VPC again
    outputs = _repaired(stack, drift, key)
    new_rule = _dot_rule(stack)
    assert new_rule["Id"] != old_rule and new_rule["CreatorRequestId"].endswith("-1")
    assert sorted(t["Ip"] for t in new_rule["TargetIps"]) == sorted(env.corporate_dns_ips)
    assert new_rule["ResolverEndpointId"] == dns["outbound_endpoint"]["resolver_endpoint_id"]
    assert _associated(stack, new_rule["Id"], data_plane.vpc_id)
    assert outputs[-1]["summary"]["dns"]["forward_rule_id"] == new_rule["Id"]


def test_the_dot_rule_targets_changed_by_hand_are_restored(
    stack: LocalStack, drift: Drift, dns_workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    spec, dns = dns_workspace
    key, rule_id = spec["workspace_key"], dns["forward_rule_id"]
    env = stack.environment
    assert env is not None
    # Given a workspace with custom DNS; when a human points the "." rule at a wrong private IP
    r53r = _human(stack)
    r53r.update_resolver_rule(
        ResolverRuleId=rule_id, Config={"TargetIps": [{"Ip": WRONG_TARGET, "Port": 53}]}
    )
    changed = r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
    assert [t["Ip"] for t in changed["TargetIps"]] == [WRONG_TARGET]
    assert "UpdateResolverRule" in stack.aws.cloudtrail.pending(), "the local CloudTrail records it"
    drift.deliver()
    # Then the change is recorded, with the request's new targets as what it became
    record = _record(drift, key, "UpdateResolverRule")
    assert rule_id in record.resource_ids and WRONG_TARGET in json.dumps(record.after)
    # And a reconcile restores the corporate targets on the same rule, and VerifyDns passes again
    _repaired(stack, drift, key)
    rule = r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
    assert sorted(t["Ip"] for t in rule["TargetIps"]) == sorted(env.corporate_dns_ips)
    assert rule["ResolverEndpointId"] == dns["outbound_endpoint"]["resolver_endpoint_id"]


# --- the outbound endpoint ---------------------------------------------------------------------------


def test_the_outbound_endpoint_deleted_by_hand_is_created_again_with_its_rules(
    stack: LocalStack,
    drift: Drift,
    dns_workspace: tuple[dict[str, Any], dict[str, Any]],
    data_plane: DataPlane,
) -> None:
    """Route 53 Resolver (and moto) refuse to delete an outbound endpoint that rules still forward through:
    the human deletes the "." rule first (disassociated from every VPC), then the endpoint. The repair makes
    a new endpoint (never the deleted one: its CreatorRequestId stays spent), a new "." rule through it,
    and associates the rule again."""
    spec, dns = dns_workspace
    key = spec["workspace_key"]
    old_endpoint, old_rule = dns["outbound_endpoint"]["resolver_endpoint_id"], dns["forward_rule_id"]
    env = stack.environment
    assert env is not None
    # Given a workspace with custom DNS; when a human deletes the "." rule and then the outbound endpoint
    r53r = _human(stack)
    _delete_rule_by_hand(r53r, old_rule)
    r53r.delete_resolver_endpoint(ResolverEndpointId=old_endpoint)
    drift.deliver()
    # Then the endpoint's deletion is recorded against the workspace
    record = _record(drift, key, "DeleteResolverEndpoint")
    assert old_endpoint in record.resource_ids
    # And a reconcile creates a new outbound endpoint (2 IPs in distinct AZs) and a "." rule through it
    outputs = _repaired(stack, drift, key)
    outbound = outputs[-1]["summary"]["dns"]["outbound_endpoint"]
    new_endpoint = outbound["resolver_endpoint_id"]
    assert new_endpoint != old_endpoint
    live = r53r.get_resolver_endpoint(ResolverEndpointId=new_endpoint)["ResolverEndpoint"]
    assert live["Status"] == "OPERATIONAL" and live["HostVPCId"] == env.dns_vpc_id
    assert live["CreatorRequestId"].endswith("-1"), "the deleted endpoint's request id is spent"
    ips = _endpoint_ips(stack, new_endpoint)
    assert len(ips) == 2 and len(_azs(stack, [i["SubnetId"] for i in ips])) == 2
    rule = _dot_rule(stack)
    assert rule["Id"] != old_rule and rule["ResolverEndpointId"] == new_endpoint
    assert sorted(t["Ip"] for t in rule["TargetIps"]) == sorted(env.corporate_dns_ips)
    assert _associated(stack, rule["Id"], data_plane.vpc_id)
    endpoints = listed(r53r, "list_resolver_endpoints", "ResolverEndpoints")
    assert old_endpoint not in {e["Id"] for e in endpoints}


def test_an_ip_address_removed_from_the_outbound_endpoint_is_added_again(
    stack: LocalStack, drift: Drift, dns_workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """moto lets an endpoint go down to one IP; if AWS refuses (an endpoint needs two), CloudTrail records
    the call with an errorCode and the detector ignores it: nothing changed."""
    spec, dns = dns_workspace
    key, endpoint = spec["workspace_key"], dns["outbound_endpoint"]["resolver_endpoint_id"]
    env = stack.environment
    assert env is not None
    [first, second] = sorted(_endpoint_ips(stack, endpoint), key=lambda i: i["SubnetId"])
    # Given the outbound endpoint with one IP per resolver subnet; when a human removes one of them
    r53r = _human(stack)
    r53r.disassociate_resolver_endpoint_ip_address(
        ResolverEndpointId=endpoint, IpAddress={"SubnetId": second["SubnetId"], "Ip": second["Ip"]}
    )
    assert [i["Ip"] for i in _endpoint_ips(stack, endpoint)] == [first["Ip"]]
    drift.deliver()
    # Then it is recorded, and a reconcile gives the same endpoint an IP in that subnet again
    record = _record(drift, key, "DisassociateResolverEndpointIpAddress")
    assert endpoint in record.resource_ids
    outputs = _repaired(stack, drift, key)
    ips = _endpoint_ips(stack, endpoint)
    assert len(ips) == 2 and {i["SubnetId"] for i in ips} == set(env.dns_subnet_ids)
    assert len(_azs(stack, [i["SubnetId"] for i in ips])) == 2
    assert sorted(outputs[-1]["summary"]["dns"]["outbound_endpoint"]["ips"]) == sorted(i["Ip"] for i in ips)


def test_an_endpoint_renamed_by_hand_is_recorded_and_needs_no_repair(
    stack: LocalStack, drift: Drift, dns_workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """UpdateResolverEndpoint can change the name, the endpoint type (only between IPv4 and dual-stack: both
    forward IPv4), its IPv6 addresses and its protocols. Nothing the spec asks for depends on the name: the
    change is detected and recorded, and the reconcile it starts finds nothing to change (no Route 53
    Resolver or security-group write)."""
    spec, dns = dns_workspace
    key, endpoint = spec["workspace_key"], dns["outbound_endpoint"]["resolver_endpoint_id"]
    since = len(stack.aws.cloudtrail.events())
    # Given a workspace with custom DNS; when a human renames its outbound endpoint
    r53r = _human(stack)
    r53r.update_resolver_endpoint(ResolverEndpointId=endpoint, Name="renamed-by-hand")
    drift.deliver()
    # Then the change is recorded against the workspace
    record = _record(drift, key, "UpdateResolverEndpoint")
    assert endpoint in record.resource_ids and "renamed-by-hand" in json.dumps(record.after)
    # And the reconcile succeeds without a single Resolver or security-group write of the application
    _repaired(stack, drift, key)
    writes = set(_app_role_events(stack, since)) & RESOLVER_WRITES
    assert not writes, writes
    assert (
        r53r.get_resolver_endpoint(ResolverEndpointId=endpoint)["ResolverEndpoint"]["Name"]
        == "renamed-by-hand"
    )


def test_an_endpoint_switched_to_doh_only_gets_do53_back(
    stack: LocalStack,
    drift: Drift,
    dns_workspace: tuple[dict[str, Any], dict[str, Any]],
    data_plane: DataPlane,
) -> None:
    """UpdateResolverEndpoint with Protocols [DoH]: the outbound endpoint stops forwarding to the corporate
    servers on port 53, so every corporate name fails from the data plane. The reconcile gives Do53 back
    beside DoH (the human's choice stays) and the names resolve again."""
    spec, dns = dns_workspace
    key, endpoint = spec["workspace_key"], dns["outbound_endpoint"]["resolver_endpoint_id"]
    name, address = CORPORATE_CHECK
    since = len(stack.aws.cloudtrail.events())
    local_dns = stack.dns
    assert local_dns is not None
    assert local_dns.explain(data_plane.vpc_id, name).addresses == (address,)
    # Given a workspace with custom DNS; when a human switches its outbound endpoint to DNS over HTTPS only
    r53r = _human(stack)
    r53r.update_resolver_endpoint(ResolverEndpointId=endpoint, Protocols=["DoH"])
    broken = local_dns.explain(data_plane.vpc_id, name)
    assert broken.outcome == "SERVFAIL" and "not Do53" in broken.reason, broken
    drift.deliver()
    # Then the change is recorded against the workspace with the protocols before and after
    record = _record(drift, key, "UpdateResolverEndpoint")
    assert endpoint in record.resource_ids and "DoH" in json.dumps(record.after)
    # And a reconcile gives the same endpoint Do53 again, and the corporate name resolves again
    _repaired(stack, drift, key)
    described = r53r.get_resolver_endpoint(ResolverEndpointId=endpoint)["ResolverEndpoint"]
    assert sorted(described["Protocols"]) == ["Do53", "DoH"]
    assert "UpdateResolverEndpoint" in _app_role_events(stack, since)
    assert local_dns.explain(data_plane.vpc_id, name).addresses == (address,)


def test_the_scan_finds_a_doh_only_endpoint_whose_event_was_lost(
    stack: LocalStack,
    drift: Drift,
    dns_workspace: tuple[dict[str, Any], dict[str, Any]],
    scheduled_scan_off: Callable[[bool], None],
) -> None:
    """CloudTrail reaches EventBridge best effort: with the event lost, the scheduled scan compares the live
    endpoint with what the workspaces need, records the finding and starts the same repair. The endpoint
    serves every workspace of this module that has custom DNS in the DNS VPC: the scan reaches them in
    parallel, least recently scanned first, each records the finding, and whichever one in remediate mode
    (earlier tests' repairs may have put others in notify mode) starts the repair, for all."""
    spec, dns = dns_workspace
    key, endpoint = spec["workspace_key"], dns["outbound_endpoint"]["resolver_endpoint_id"]
    table = (
        stack.boto_session()
        .resource("dynamodb", endpoint_url=stack.aws.endpoint_url)
        .Table(drift.outputs["TableName"])
    )
    users = StoreClient(table).workspaces_using(endpoint)
    assert key in users, users
    r53r = _human(stack)
    r53r.update_resolver_endpoint(ResolverEndpointId=endpoint, Protocols=["DoH"])
    assert stack.aws.cloudtrail.lose_pending() >= 1
    stack.aws.cloudtrail.resume()
    scheduled_scan_off(True)
    try:
        found = wait_for(
            lambda: [
                r
                for k in users
                for r in drift.records(k)
                if r.source == "scan"
                and r.outcome in HANDLED
                and any(endpoint in f and "without Do53" in f for f in r.findings)
            ],
            60,
            f"a scan finding on {endpoint}",
        )
    finally:
        scheduled_scan_off(False)
    assert found[0].actor == "", found[0]
    _quiet(stack, drift)
    described = r53r.get_resolver_endpoint(ResolverEndpointId=endpoint)["ResolverEndpoint"]
    assert sorted(described["Protocols"]) == ["Do53", "DoH"]


# --- the resolver security group ---------------------------------------------------------------------


def test_a_resolver_group_rule_modified_by_hand_is_restored(
    stack: LocalStack,
    drift: Drift,
    dns_workspace: tuple[dict[str, Any], dict[str, Any]],
    data_plane: DataPlane,
) -> None:
    """ModifySecurityGroupRules on the outbound endpoint's group: the rule letting DNS out to a corporate
    server is moved to port 54. The group is indexed with the workspace's resources (the DNS result names
    it), so the event reaches the detector; the reconcile authorizes TCP 53 out again and revokes what is
    not DNS to the servers. DeleteSecurityGroup of this group is not tested: AWS refuses to delete a group
    that network interfaces (here the endpoint's) use (DependencyViolation), so the failed call changes
    nothing and is ignored."""
    spec, dns = dns_workspace
    key = spec["workspace_key"]
    group_id = dns["outbound_endpoint"]["security_group_id"]
    assert group_id, dns
    server = f"{spec['dns']['custom_dns']['corporate_dns_ips'][0]}/32"
    ec2 = stack.client("ec2")

    def rules(port: int) -> list[dict[str, Any]]:
        found = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
            "SecurityGroupRules"
        ]
        return [
            r
            for r in found
            if r["IsEgress"]
            and r["IpProtocol"] == "tcp"
            and r.get("CidrIpv4") == server
            and r["FromPort"] == port
        ]

    [rule] = rules(53)
    # Given the resolver group letting TCP 53 out to a corporate server; when a human moves it to port 54
    stack.aws.cloudtrail.pause()
    ec2.modify_security_group_rules(
        GroupId=group_id,
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": rule["SecurityGroupRuleId"],
                "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 54, "ToPort": 54, "CidrIpv4": server},
            }
        ],
    )
    assert not rules(53)
    drift.deliver()
    # Then it is recorded against the workspace, and a reconcile lets TCP 53 out again and drops port 54
    record = _record(drift, key, "ModifySecurityGroupRules")
    assert group_id in record.resource_ids
    _repaired(stack, drift, key)
    assert rules(53) and not rules(54)


# --- private hosted zones ----------------------------------------------------------------------------


def test_a_vpc_disassociated_from_a_listed_private_zone_is_associated_again(
    stack: LocalStack, reconciler: Reconciler, drift: Drift, data_plane: DataPlane
) -> None:
    """DisassociateVPCFromHostedZone: a private zone whose names only its VPCs resolve (dns.private_zones)
    loses the data-plane VPC; its names then go to the "." rule and the corporate servers, which do not know
    them. The event (Route 53 is global: CloudTrail records it in us-east-1, this stack's region) names the
    zone and the VPC, both indexed with the workspace; the reconcile associates the VPC again."""
    env = stack.environment
    assert env is not None
    route53 = stack.client("route53")
    name, address = "db.data.example.internal", "10.0.5.5"
    zone_id = private_zone(
        stack, "data.example.internal", [data_plane.vpc_id, env.dns_vpc_id], {name: address}
    )
    # Given a workspace with custom DNS whose spec lists the zone for the data-plane VPC and verifies a name
    key = "r-private-zone"
    spec = spec_for(stack, data_plane, key)
    spec["dns"] = {
        **_custom_dns(stack, data_plane),
        "private_zones": [{"hosted_zone_id": zone_id, "vpc_ids": [data_plane.vpc_id]}],
        "verify": [{"name": name, "expect_ips": [address]}],
    }
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    assert dns["verification"]["status"] == "verified"
    assert dns["zone_associations"] == [
        {
            "hosted_zone_id": zone_id,
            "zone_name": "data.example.internal",
            "vpc_id": data_plane.vpc_id,
            "action": "found",
            "change": None,
        }
    ]
    drift.deliver()
    local_dns = stack.dns
    assert local_dns is not None
    try:
        # When a human disassociates the data-plane VPC from the zone
        stack.aws.cloudtrail.pause()
        route53.disassociate_vpc_from_hosted_zone(
            HostedZoneId=zone_id, VPC={"VPCRegion": env.region, "VPCId": data_plane.vpc_id}
        )
        assert local_dns.explain(data_plane.vpc_id, name).addresses == ()
        assert "DisassociateVPCFromHostedZone" in stack.aws.cloudtrail.pending()
        drift.deliver()
        # Then it is recorded against the workspace, naming the zone and the VPC
        record = _record(drift, key, "DisassociateVPCFromHostedZone")
        assert {zone_id, data_plane.vpc_id} <= set(record.resource_ids), record
        # And a reconcile associates the VPC again: the name resolves to the zone's record once more
        outputs = _repaired(stack, drift, key)
        [association] = outputs[-1]["summary"]["dns"]["zone_associations"]
        assert association["action"] == "created" and association["change"], association
        vpcs = {v["VPCId"] for v in route53.get_hosted_zone(Id=zone_id)["VPCs"]}
        assert vpcs == {data_plane.vpc_id, env.dns_vpc_id}
        assert local_dns.explain(data_plane.vpc_id, name).addresses == (address,)
    finally:
        stack.aws.cloudtrail.resume()
        _quiet(stack, drift)
