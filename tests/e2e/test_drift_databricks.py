"""Databricks-side drift end to end on the local stack, and the deleted workspace VPC endpoint.

No event reports a change made through the Account API: the scheduled scan finds it (fired here through
the scan rule's own target, the schedule being off), records it and a reconcile repairs it. A deleted
VPC endpoint is reported by CloudTrail; its repair needs a new network object on subnets and groups no
other network holds (Databricks lets a subnet or group serve one network object only): with
network.standby the reconcile builds it on the standby set and moves the workspace by itself; without,
the run says what to change, once, and the apply that gives new subnets and groups completes the repair.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink_local.databricks.errors import ApiError
from dbx_privatelink_local.seed import DataPlane, workspace_security_group
from dbx_privatelink_local.stack import LocalStack

from . import test_drift as _shared
from .conftest import Reconciler, free_subnets, spec_for
from .test_drift import STARTED, Drift, scan_until, wait_for

pytestmark = pytest.mark.e2e

# The fixtures of test_drift.py, by name in this module (the scan schedule stays off here as well).
drift = _shared.drift
scheduled_scan_off = _shared.scheduled_scan_off
topic_queue = _shared.topic_queue
workspace = _shared.workspace

Workspace = tuple[dict[str, Any], dict[str, Any]]


def _workspace_status(stack: LocalStack, workspace_id: int) -> str:
    return str(stack.emulator.backend.get_workspace(workspace_id)["workspace_status"])


def _other_private_access_settings(stack: LocalStack, name: str) -> str:
    """Private access settings a human creates in the account console (public access on)."""
    created = stack.emulator.backend.create_private_access_settings(
        {
            "private_access_settings_name": name,
            "region": stack.config.region,
            "public_access_enabled": True,
            "private_access_level": "ACCOUNT",
        }
    )
    return str(created["private_access_settings_id"])


# --- 1. a registration deleted through the Account API ---------------------------------------------


def test_a_registration_in_use_cannot_be_deleted_so_the_scan_finds_nothing(
    stack: LocalStack, drift: Drift, workspace: Workspace
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    backend = stack.emulator.backend
    network_id = summary["network"]["network_id"]
    # Given a healthy workspace whose network uses both registrations
    for role in ("workspace", "relay"):
        registration = summary["registrations"][role]["id"]
        # When a human deletes the registration through the Account API
        with pytest.raises(ApiError, match=f"being used by network {network_id}"):
            backend.delete_vpc_endpoint(registration)
        # Then Databricks refuses (INVALID_STATE) and the registration is still there
        assert backend.get_vpc_endpoint(registration)["vpc_endpoint_id"] == registration
    # And the scan finds nothing to repair
    drift.scan_now()
    assert drift.records(key) == [] and drift.remediations(key) == []


# --- 4. the workspace's private access settings deleted ----------------------------------------------


def test_private_access_settings_in_use_cannot_be_deleted(
    stack: LocalStack, drift: Drift, workspace: Workspace
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    backend = stack.emulator.backend
    pas_id = summary["private_access_settings"]["private_access_settings_id"]
    workspace_id = summary["workspace"]["workspace_id"]
    # Given a healthy workspace; when a human deletes its private access settings through the Account API
    with pytest.raises(ApiError, match=f"being used by active workspace {workspace_id}"):
        backend.delete_private_access_settings(pas_id)
    # Then Databricks refuses: this drift kind cannot happen while the workspace uses them
    assert backend.get_private_access_settings(pas_id)["private_access_settings_id"] == pas_id
    drift.scan_now()
    assert drift.records(key) == [] and drift.remediations(key) == []


# --- 2. the workspace moved onto other private access settings -------------------------------------


def test_workspace_patched_onto_other_private_access_settings_is_moved_back(
    stack: LocalStack, drift: Drift, workspace: Workspace, scheduled_scan_off: Callable[[bool], None]
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    workspace_id = int(summary["workspace"]["workspace_id"])
    own = summary["private_access_settings"]["private_access_settings_id"]
    backend = stack.emulator.backend
    # Given a healthy workspace; when a human creates other private access settings and PATCHes the
    # workspace onto them through the Account API (no CloudTrail event)
    other = _other_private_access_settings(stack, f"{key}-by-hand")
    backend.update_workspace(workspace_id, {"private_access_settings_id": other})
    wait_for(lambda: _workspace_status(stack, workspace_id) == "RUNNING", 30, "the human's PATCH applied")
    assert backend.get_workspace(workspace_id)["private_access_settings_id"] == other
    # Then the scan finds it and records it
    [record] = scan_until(drift, scheduled_scan_off, key, STARTED)
    assert record.source == "scan" and record.event_name == "ScheduledScan"
    assert f"workspace {workspace_id} uses private access settings {other}, not {own}" in record.findings
    # And the reconcile moves the workspace back onto its own private access settings
    drift.succeeded(str(record.execution_arn))
    wait_for(lambda: _workspace_status(stack, workspace_id) == "RUNNING", 30, "RUNNING again")
    assert backend.get_workspace(workspace_id)["private_access_settings_id"] == own
    drift.settle(key)
    assert len(drift.remediations(key)) == 1


# --- 3. the network BROKEN, the workspace FAILED ----------------------------------------------------


def test_broken_network_and_failed_workspace_are_found_with_the_network_messages_and_repaired(
    stack: LocalStack,
    drift: Drift,
    workspace: Workspace,
    data_plane: DataPlane,
    scheduled_scan_off: Callable[[bool], None],
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    workspace_id = int(summary["workspace"]["workspace_id"])
    own = summary["private_access_settings"]["private_access_settings_id"]
    network_id = summary["network"]["network_id"]
    backend = stack.emulator.backend
    ec2 = stack.client("ec2")
    lo, hi = port_ranges(default_catalog().workspace_sg_egress_tcp_ports)[0]
    egress = {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    # Given a healthy workspace, and CloudTrail losing the next events (the scan is the only detector)
    stack.aws.cloudtrail.pause()
    try:
        # When a human revokes an egress rule of the workspace group, then PATCHes the workspace (onto
        # other private access settings): Databricks validates the network again, it is BROKEN
        ec2.revoke_security_group_egress(GroupId=data_plane.workspace_sg_id, IpPermissions=[egress])
        time.sleep(1.1)  # times are whole seconds: the repair must start in a later second than the change
        backend.update_workspace(
            workspace_id, {"private_access_settings_id": _other_private_access_settings(stack, f"{key}-x")}
        )
        wait_for(lambda: _workspace_status(stack, workspace_id) == "FAILED", 30, "the workspace FAILED")
        network = backend.get_network(network_id)
        assert network["vpc_status"] == "BROKEN" and network["error_messages"]
        messages = [m["error_message"] for m in network["error_messages"]]
        # Then the scan records it with the network's messages
        # (a record per drift: the rule, the network, the workspace; one repair for them all)
        records = scan_until(drift, scheduled_scan_off, key, STARTED)
        assert {r.source for r in records} == {"scan"} and len({r.execution_arn for r in records}) == 1
        findings = [f for r in records for f in r.findings]
        broken = [f for f in findings if f.startswith(f"network {network_id} is BROKEN")]
        assert broken and all(m in broken[0] for m in messages), findings
        assert any(f.startswith(f"workspace {workspace_id} is FAILED") for f in findings)
        # And the cause is fixed first (the egress rule restored), then the reconcile puts the workspace
        # back on its own private access settings, which provisions it again on the repaired network
        actions = records[0].actions
        assert any(data_plane.workspace_sg_id in a and "egress" in a for a in actions), actions
        drift.succeeded(str(records[0].execution_arn))
    finally:
        stack.aws.cloudtrail.resume()
    wait_for(lambda: _workspace_status(stack, workspace_id) == "RUNNING", 30, "RUNNING again")
    assert backend.get_workspace(workspace_id)["private_access_settings_id"] == own
    assert backend.get_network(network_id)["vpc_status"] == "VALID"
    assert backend.get_network(network_id)["error_messages"] == []
    # And the late CloudTrail event of the revoke joins the repair that already saw it
    drift.settle(key)
    assert len(drift.remediations(key)) == 1


# --- 5. the workspace (REST) VPC endpoint deleted ---------------------------------------------------


def _live_workspace_endpoints(stack: LocalStack, vpc_id: str, service_name: str) -> list[str]:
    found = stack.client("ec2").describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service_name]}]
    )["VpcEndpoints"]
    return sorted(e["VpcEndpointId"] for e in found if e["State"].lower() not in ("deleted", "deleting"))


def test_deleted_workspace_endpoint_is_recreated_once_and_the_run_names_the_spec_change(
    stack: LocalStack,
    drift: Drift,
    reconciler: Reconciler,
    workspace: Workspace,
    data_plane: DataPlane,
    topic_queue: Callable[[], list[dict[str, Any]]],
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    old_endpoint = summary["endpoints"]["workspace"]["id"]
    old_network = summary["network"]["network_id"]
    workspace_id = int(summary["workspace"]["workspace_id"])
    backend = stack.emulator.backend
    ec2 = stack.client("ec2")
    service = ec2.describe_vpc_endpoints(VpcEndpointIds=[old_endpoint])["VpcEndpoints"][0]["ServiceName"]
    topic_queue()
    # Given a healthy workspace; when a human deletes its workspace (REST API) VPC endpoint
    ec2.delete_vpc_endpoints(VpcEndpointIds=[old_endpoint])
    drift.deliver()
    # Then CloudTrail's DeleteVpcEndpoints is recorded against the workspace and a reconcile starts
    [record] = drift.record_with(key, "remediation_started")
    assert record.event_name == "DeleteVpcEndpoints" and record.resource_ids == [old_endpoint]
    assert record.actor.endswith(":user/operator")
    # And the reconcile creates one new endpoint and registers it, then stops FAILED naming the change
    arn = str(record.execution_arn)
    status = wait_for(
        lambda: (s := drift.sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and s,
        60,
        "the remediation finished",
    )
    assert status["status"] == "FAILED" and status["error"] == "SpecInvalidError", status
    assert "network.workspace_subnet_ids" in status["cause"]
    assert "network.workspace_security_group_ids" in status["cause"]
    assert "add network.standby" in status["cause"], "the way to make this repair automatic"
    [new_endpoint] = _live_workspace_endpoints(stack, data_plane.vpc_id, service)
    assert new_endpoint != old_endpoint
    registered = [r for r in backend.list_vpc_endpoints() if r["aws_vpc_endpoint_id"] == new_endpoint]
    assert len(registered) == 1
    # And the workspace keeps running on its network meanwhile (nothing half-moved)
    workspace_now = backend.get_workspace(workspace_id)
    assert workspace_now["network_id"] == old_network and workspace_now["workspace_status"] == "RUNNING"

    # When the scan runs next (and the event is delivered once more, as EventBridge may)
    drift.scan_now()
    [event] = [
        e
        for e in stack.aws.cloudtrail.events("DeleteVpcEndpoints")
        if e["detail"]["userIdentity"]["type"] == "IAMUser" and old_endpoint in json.dumps(e["detail"])
    ]
    drift.redeliver(event)
    # Then the drift record says the repair failed and what to change, and a notification says so
    [failed] = drift.record_with(key, "remediation_failed")
    assert failed.event_id == record.event_id
    assert any("SpecInvalidError" in a and "network.workspace_subnet_ids" in a for a in failed.actions)
    messages = wait_for(
        lambda: [
            m
            for m in topic_queue()
            if key in m.get("Subject", "") and "network.workspace_security_group_ids" in m.get("Message", "")
        ],
        10,
        "the notification of the failed repair",
    )
    assert "FAILED" in messages[0]["Message"]
    # And no second remediation and no other endpoint: the ClientToken's incarnation is the same
    drift.settle(key)
    assert len(drift.remediations(key)) == 1
    assert _live_workspace_endpoints(stack, data_plane.vpc_id, service) == [new_endpoint]
    assert [r.outcome for r in drift.records(key)] == ["remediation_failed"]
    # And an apply of the unchanged spec stops the same way without creating anything on AWS
    again = reconciler.run(spec)
    assert again.status == "FAILED" and again.error == "SpecInvalidError"
    assert "CreateVpcEndpoint" not in again.aws_mutations
    assert _live_workspace_endpoints(stack, data_plane.vpc_id, service) == [new_endpoint]

    # When the operator gives new workspace subnets and a new group in the spec (apply)
    halves = free_subnets(data_plane, 25)
    azs = [
        s["AvailabilityZone"]
        for s in ec2.describe_subnets(SubnetIds=data_plane.workspace_subnet_ids)["Subnets"]
    ]
    subnets = [
        ec2.create_subnet(VpcId=data_plane.vpc_id, CidrBlock=half, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for half, az in zip(halves, azs, strict=True)
    ]
    group = workspace_security_group(ec2, data_plane.vpc_id, f"{key}-pl-sg-new")
    # The operator's own changes (the new group's rules) reach the detector before the spec names the group,
    # as changes made ahead of an apply do: delivered after it, a rule revoked on a group the spec now names
    # is drift of the workspace (a second remediation, converged), which is not what this test is about.
    drift.deliver()
    fixed = json.loads(json.dumps(spec))
    fixed["network"].update(workspace_subnet_ids=subnets, workspace_security_group_ids=[group])
    run = reconciler.run(fixed)
    # Then the workspace is RUNNING on a new network that uses the new endpoint, the old one is retired
    assert run.status == "SUCCEEDED", run.cause
    assert "CreateVpcEndpoint" not in run.aws_mutations
    moved = backend.get_workspace(workspace_id)
    assert moved["workspace_status"] == "RUNNING" and moved["network_id"] != old_network
    network = backend.get_network(moved["network_id"])
    assert network["vpc_endpoints"]["rest_api"] == [registered[0]["vpc_endpoint_id"]]
    assert sorted(network["subnet_ids"]) == sorted(subnets) and network["security_group_ids"] == [group]
    assert old_network not in {n["network_id"] for n in backend.list_networks()}
    assert run.output["summary"]["endpoints"]["workspace"]["id"] == new_endpoint
    drift.settle(key)
    assert len(drift.remediations(key)) == 1


def test_deleted_workspace_endpoint_is_repaired_onto_the_standby_set_by_one_reconcile(
    stack: LocalStack, drift: Drift, reconciler: Reconciler, standby_plane: DataPlane
) -> None:
    # Given a healthy workspace on its primary subnets and group, with a standby set in the spec
    plane = standby_plane
    key = "d-endpoint-standby"
    spec = spec_for(stack, plane, key)
    services = default_catalog().region(stack.config.region)
    assert services is not None
    # A dns.verify name turns VerifyDns on; it always checks the workspace and relay names as well.
    spec["dns"] = {"verify": [{"name": services.private_dns_name}]}
    first = reconciler.run(spec)
    assert first.status == "SUCCEEDED", first.cause
    drift.deliver()  # the reconcile's own calls: they must start nothing
    summary = first.output["summary"]
    old_endpoint = summary["endpoints"]["workspace"]["id"]
    old_network = summary["network"]["network_id"]
    workspace_id = int(summary["workspace"]["workspace_id"])
    backend = stack.emulator.backend
    assert sorted(backend.get_network(old_network)["subnet_ids"]) == sorted(plane.workspace_subnet_ids)
    ec2 = stack.client("ec2")
    service = ec2.describe_vpc_endpoints(VpcEndpointIds=[old_endpoint])["VpcEndpoints"][0]["ServiceName"]
    # When a human deletes its workspace (REST API) VPC endpoint
    ec2.delete_vpc_endpoints(VpcEndpointIds=[old_endpoint])
    drift.deliver()
    # Then CloudTrail's DeleteVpcEndpoints is recorded against the workspace and one reconcile repairs it
    [record] = drift.record_with(key, STARTED)
    assert record.event_name == "DeleteVpcEndpoints" and record.resource_ids == [old_endpoint]
    assert record.actor.endswith(":user/operator")
    arn = str(record.execution_arn)
    drift.succeeded(arn)
    # And it created one new endpoint and registered it once
    [new_endpoint] = _live_workspace_endpoints(stack, plane.vpc_id, service)
    assert new_endpoint != old_endpoint
    [registered] = [r for r in backend.list_vpc_endpoints() if r["aws_vpc_endpoint_id"] == new_endpoint]
    # And the workspace runs on a new network on the standby set that uses it; the old network is deleted
    moved = backend.get_workspace(workspace_id)
    assert moved["workspace_status"] == "RUNNING" and moved["network_id"] != old_network
    network = backend.get_network(moved["network_id"])
    assert network["vpc_endpoints"]["rest_api"] == [registered["vpc_endpoint_id"]]
    assert sorted(network["subnet_ids"]) == sorted(plane.standby_subnet_ids)
    assert network["security_group_ids"] == [plane.standby_sg_id]
    assert network["vpc_status"] == "VALID"
    assert old_network not in {n["network_id"] for n in backend.list_networks()}
    repair = json.loads(drift.sfn.describe_execution(executionArn=arn)["output"])["summary"]
    assert repair["network"] == {
        "network_id": moved["network_id"],
        "action": "replaced",
        "replaced_network_id": old_network,
    }
    assert repair["workspace"]["action"] == "updated"
    assert repair["endpoints"]["workspace"] == {"id": new_endpoint, "action": "created"}
    # And the verification passed: the workspace name answers with the new endpoint's addresses
    verification = repair["dns"]["verification"]
    assert verification["status"] == "verified", verification
    interfaces = ec2.describe_vpc_endpoints(VpcEndpointIds=[new_endpoint])["VpcEndpoints"][0][
        "NetworkInterfaceIds"
    ]
    addresses = {
        i["PrivateIpAddress"]
        for i in ec2.describe_network_interfaces(NetworkInterfaceIds=interfaces)["NetworkInterfaces"]
    }
    [checked] = [n for n in verification["names"] if n["expected"]][:1]
    assert checked["name"] == services.private_dns_name and checked["ok"], verification
    assert set(checked["expected"]) == addresses and set(checked["answers"]) <= addresses, verification
    # And the repair's own calls start no second run; the next scan finds nothing and the record says
    # repaired by that run, not failed
    drift.settle(key)
    drift.scan_now()
    assert len(drift.remediations(key)) == 1
    assert [(r.outcome, r.execution_arn) for r in drift.records(key)] == [("repaired", arn)]

    # When the same spec is applied again, then nothing changes on either side
    again = reconciler.run(spec)
    assert again.status == "SUCCEEDED", again.cause
    assert not again.aws_mutations, again.aws_mutations
    assert not again.databricks_mutations, again.databricks_mutations
    assert again.output["summary"]["network"] == {
        "network_id": moved["network_id"],
        "action": "unchanged",
        "replaced_network_id": None,
    }
