"""Decommission on the local stack, through the CLI as an operator runs it: two workspaces sharing a VPC and a
DNS VPC leave one after the other (the first keeps what the second uses, the last one out takes it all and
leaves nothing the application made); detach deletes nothing and drift leaves the workspace alone until an
apply takes it back; a decommission interrupted on both sides finishes on a re-run without touching what
another workspace uses; the drift scan removes orphans."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dbx_privatelink.decommission.claims import claim_token
from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.ledger import SharedRecord
from dbx_privatelink.reconcile.preflight import OWNER_TAG_KEY
from dbx_privatelink_cli.main import main as cli
from dbx_privatelink_cli.plan import read_only
from dbx_privatelink_local.seed import DataPlane
from dbx_privatelink_local.stack import LocalStack

from . import test_drift as _drift
from . import test_fleet as _fleet
from .conftest import MUTATING_HTTP, SWEEP_AGENT, Reconciler, _new_data_plane, free_subnets, listed, spec_for
from .test_drift import Drift, _human_turns_private_dns_off, wait_for
from .test_fleet import _behind, _ledger, _neighbour

pytestmark = pytest.mark.e2e

# Fixtures of the neighbouring modules, by name here (the scan's schedule stays off in this module: a test
# fires a tick when it wants one, so a tick of the schedule never takes an orphan or a workspace first).
dns_vpc = _fleet.dns_vpc
drift = _drift.drift
scheduled_scan_off = _drift.scheduled_scan_off


@dataclass
class Cli:
    """The dbx-privatelink CLI pointed at the local stack, run in-process."""

    stack: LocalStack
    env: dict[str, str]
    session: Any  # one session for every command: a test can guard it (plan.read_only)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli(list(argv), env=self.env, out=out, err=err, session=self.session)
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str) -> tuple[int, Any]:
        code, out, err = self(*argv, "--output", "json")
        assert out, err
        return code, json.loads(out)


@pytest.fixture
def run_cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Cli:
    env = stack.client_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # boto3 reads AWS_ENDPOINT_URL from the process environment
    return Cli(stack, env, stack.boto_session())


def _databricks_writes(stack: LocalStack) -> int:
    calls = stack.emulator.calls_by_operation()
    return sum(n for op, n in calls.items() if op.split(" ", 1)[0] in MUTATING_HTTP and "/oidc/" not in op)


def _aws_writes(stack: LocalStack) -> int:
    stack.aws.cloudtrail.flush()
    return len(stack.aws.cloudtrail.events())


def _owned(stack: LocalStack, vpc_ids: set[str]) -> dict[str, list[str]]:
    """Everything the application made that still exists in these VPCs (and the Databricks objects of
    their endpoints): what a last decommission must leave empty."""
    ec2, r53r = stack.client("ec2"), stack.client("route53resolver")
    endpoints = [
        e
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": sorted(vpc_ids)}])[
            "VpcEndpoints"
        ]
        if e["State"].lower() != "deleted"
    ]
    resolver_endpoints = [
        e for e in listed(r53r, "list_resolver_endpoints", "ResolverEndpoints") if e["HostVPCId"] in vpc_ids
    ]
    rules = [
        r["Id"]
        for r in listed(r53r, "list_resolver_rules", "ResolverRules")
        if r.get("OwnerId", "").isdigit()
        and any(
            t["Key"] == "dbx-privatelink:scope" and t["Value"] in vpc_ids
            for t in r53r.list_tags_for_resource(ResourceArn=r["Arn"])["Tags"]
        )
    ]
    associations = [
        a["Id"]
        for a in listed(r53r, "list_resolver_rule_associations", "ResolverRuleAssociations")
        if a["VPCId"] in vpc_ids and a["ResolverRuleId"].startswith("rslvr-rr-")
    ]
    groups = [
        g["GroupId"]
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": sorted(vpc_ids)}])[
            "SecurityGroups"
        ]
        if any(t["Key"] == OWNER_TAG_KEY for t in g.get("Tags", []))
    ]
    ever = {
        e["VpcEndpointId"]
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": sorted(vpc_ids)}])[
            "VpcEndpoints"
        ]
    }
    backend = stack.emulator.backend
    return {
        "vpc endpoints": sorted(e["VpcEndpointId"] for e in endpoints),
        "registrations": sorted(
            r.vpc_endpoint_id for r in backend.endpoints.values() if r.aws_vpc_endpoint_id in ever
        ),
        "resolver endpoints": sorted(e["Id"] for e in resolver_endpoints),
        "rules": sorted(rules),
        "associations": sorted(associations),
        "security groups": sorted(groups),
    }


def _databricks_objects(stack: LocalStack, keys: list[str]) -> dict[str, list[str]]:
    backend = stack.emulator.backend
    return {
        "workspaces": [str(w.workspace_id) for w in backend.workspaces.values() if w.workspace_name in keys],
        "networks": [
            n.network_name for n in backend.networks.values() if n.network_name.split("-network-")[0] in keys
        ],
        "private access settings": [
            p.private_access_settings_name
            for p in backend.private_access.values()
            if p.private_access_settings_name.removesuffix("-private-access") in keys
        ],
    }


def _records_of(stack: LocalStack, key: str) -> list[SharedRecord]:
    return [r for r in _ledger(stack).list_shared() if key in r.refs]


def test_two_workspaces_sharing_a_vpc_and_a_dns_vpc_leave_one_after_the_other(
    stack: LocalStack,
    reconciler: Reconciler,
    request: pytest.FixtureRequest,
    dns_vpc: tuple[str, list[str]],
    run_cli: Cli,
) -> None:
    # Given two workspaces in one VPC behind one DNS VPC, both applied
    plane = _new_data_plane(stack, request, standby=False)
    a = _behind(spec_for(stack, plane, "dc-share-a"), stack, dns_vpc)
    b = _behind(_neighbour(stack, plane, "dc-share-b", 0), stack, dns_vpc)
    runs = reconciler.run_all([a, b])
    assert [r.status for r in runs] == ["SUCCEEDED"] * 2, [r.cause for r in runs]
    vpcs = {plane.vpc_id, dns_vpc[0]}
    made = _owned(stack, vpcs)
    assert len(made["vpc endpoints"]) == 5 and len(made["rules"]) == 2 and len(made["security groups"]) == 1

    # When the operator plans the decommission of A in delete mode (read-only)
    code, planned = run_cli.json("plan", "--destroy", "dc-share-a", "--mode", "delete")
    # Then it deletes A's workspace, network and private access settings and keeps the shared ones for B
    assert code == 0 and planned["status"] == "ready"
    actions = {(i["kind"], i["action"]) for i in planned["items"]}
    assert {("workspace", "delete"), ("network", "delete"), ("private access settings", "delete")} <= actions
    shared = [i for i in planned["items"] if i["shared_key"]]
    assert shared and all(i["action"] == "keep" and i["used_by"] == ["dc-share-b"] for i in shared), shared

    # When A is destroyed (delete mode, no question asked, followed to its end)
    code, out, err = run_cli("destroy", "dc-share-a", "--mode", "delete", "--yes", "--wait")
    # Then it succeeded and said what it deleted and what it kept for B
    assert code == 0, (out, err)
    assert "SUCCEEDED: decommission of dc-share-a (delete)" in out and "still used by dc-share-b" in out
    assert _databricks_objects(stack, ["dc-share-a"]) == {
        "workspaces": [],
        "networks": [],
        "private access settings": [],
    }
    # And every shared resource is still there, B's reference in the ledger, A's gone
    assert _owned(stack, vpcs) == made
    assert _records_of(stack, "dc-share-a") == []
    assert {r.kind for r in _records_of(stack, "dc-share-b")} >= {
        "vpc-endpoint",
        "registration",
        "resolver-rule",
    }
    # And B is HEALTHY, checked live, and a re-apply of B changes nothing on either side
    code, status = run_cli.json("status", "dc-share-b")
    assert code == 0 and status["health"] == "HEALTHY", status
    again = reconciler.run(b)
    assert again.status == "SUCCEEDED", again.cause
    assert not again.aws_mutations and not again.databricks_mutations, (
        again.aws_mutations,
        again.databricks_mutations,
    )
    # And A is shown decommissioned, its spec kept as history
    code, status = run_cli.json("status", "dc-share-a")
    assert code == 0 and status["health"] == "DECOMMISSIONED", status
    assert status["decommission"]["mode"] == "delete" and status["decommission"]["kept"]
    code, listed = run_cli.json("status")
    assert [w["health"] for w in listed if w["workspace_key"] == "dc-share-a"] == ["DECOMMISSIONED"]

    # When B, the last one, is destroyed as well (the Resolver endpoint's interfaces linger on AWS a while
    # after the endpoint: EC2 refuses to delete its group twice, as in use)
    lingering = stack.aws.faults.add(
        service="ec2", action="DeleteSecurityGroup", code="DependencyViolation", status=400, times=2
    )
    code, result = run_cli.json("destroy", "dc-share-b", "--mode", "delete", "--yes", "--wait")
    # Then nothing the application made for them is left: no endpoint, registration, Resolver endpoint,
    # rule, association or group; no workspace, network or private access settings; no ledger entry
    assert code == 0 and result["status"] == "SUCCEEDED", result
    assert lingering.remaining == 0, "the group's deletion was refused, waited for and made"
    assert _owned(stack, vpcs) == {kind: [] for kind in made}
    assert _databricks_objects(stack, ["dc-share-a", "dc-share-b"]) == {
        "workspaces": [],
        "networks": [],
        "private access settings": [],
    }
    assert [r for r in _ledger(stack).list_shared() if plane.vpc_id in r.key or dns_vpc[0] in r.key] == []
    # ... the S3 gateway endpoint took its route with it
    routes = stack.client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [plane.vpc_id]}])
    assert not [
        r for t in routes["RouteTables"] for r in t["Routes"] if r.get("GatewayId", "").startswith("vpce-")
    ]

    # When B is destroyed a third time
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.deployment.outputs["DecommissionStateMachineArn"]  # type: ignore[union-attr]
    )["executions"]
    aws_before, dbx_before = _aws_writes(stack), _databricks_writes(stack)
    with read_only(run_cli.session):
        code, out, err = run_cli("destroy", "dc-share-b", "--mode", "delete", "--yes", "--wait")
    # Then it says so and exits 0, having started nothing and changed nothing on either side
    assert code == 0, err
    assert "already decommissioned" in out
    assert _aws_writes(stack) == aws_before and _databricks_writes(stack) == dbx_before
    assert (
        stack.client("stepfunctions").list_executions(
            stateMachineArn=stack.deployment.outputs["DecommissionStateMachineArn"]  # type: ignore[union-attr]
        )["executions"]
        == executions
    )
    # And a workspace the stack never managed is said to be so, exit 0
    code, out, _ = run_cli("destroy", "dc-never-applied", "--yes")
    assert code == 0 and "not managed" in out


def test_detach_leaves_everything_running_drift_alone_and_an_apply_takes_it_back(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, drift: Drift, run_cli: Cli
) -> None:
    # Given an applied workspace
    key = "dc-detach"
    spec = spec_for(stack, data_plane, key)
    first = reconciler.run(spec)
    assert first.status == "SUCCEEDED", first.cause
    summary = first.output["summary"]
    made = _owned(stack, {data_plane.vpc_id})
    objects = _databricks_objects(stack, [key])
    drift.deliver()  # the apply's own events: handled before the decommission
    # When it is destroyed in the default mode
    aws_before, dbx_before = _aws_writes(stack), _databricks_writes(stack)
    code, result = run_cli.json("destroy", key, "--yes", "--wait")
    # Then nothing was deleted or changed on AWS or in Databricks, and the workspace keeps RUNNING
    assert code == 0 and result["status"] == "SUCCEEDED" and result["mode"] == "detach", result
    assert result["deleted"] == [] and result["kept"]
    assert _aws_writes(stack) == aws_before and _databricks_writes(stack) == dbx_before
    assert _owned(stack, {data_plane.vpc_id}) == made and _databricks_objects(stack, [key]) == objects
    workspace = stack.emulator.backend.get_workspace(int(summary["workspace"]["workspace_id"]))
    assert workspace["workspace_status"] == "RUNNING"
    # And its references stay in the ledger: no other workspace's decommission takes what it still uses
    assert {r.kind for r in _records_of(stack, key)} >= {"vpc-endpoint", "registration"}

    # When a human turns private DNS off on its workspace endpoint, and the scan ticks
    endpoint = summary["endpoints"]["workspace"]["id"]
    _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    tick = drift.scan_now()
    # Then drift starts nothing for it: no record, no remediation, not even planned by the scan
    assert drift.records(key) == [] and drift.remediations(key) == []
    assert key not in [w.workspace_key for w in tick.workspaces]
    assert DriftStore(drift.store._t).workspaces_using(endpoint) == []

    # When its spec is applied again
    again = reconciler.run(spec)
    # Then it adopts everything with no create on either side (private DNS is turned back on), and it is
    # managed again: HEALTHY, indexed for drift
    assert again.status == "SUCCEEDED", again.cause
    assert not [op for op in again.aws_mutations if op.startswith("Create")], again.aws_mutations
    assert not [op for op in again.databricks_mutations if op.startswith("POST")], again.databricks_mutations
    assert again.output["summary"]["endpoints"]["workspace"]["id"] == endpoint
    code, status = run_cli.json("status", key)
    assert code == 0 and status["health"] == "HEALTHY", status
    assert drift.store.workspaces_using(endpoint) == [key]


@pytest.fixture
def in_use_as_bare_409(stack: LocalStack) -> Iterator[None]:
    """Databricks answers in-use deletes with HTTP 409 and an empty body for one test."""
    stack.emulator.backend.in_use_refusal = "bare-409"
    try:
        yield
    finally:
        stack.emulator.backend.in_use_refusal = "INVALID_STATE"


def test_an_interrupted_decommission_finishes_on_a_re_run_and_keeps_what_another_workspace_uses(
    stack: LocalStack,
    reconciler: Reconciler,
    request: pytest.FixtureRequest,
    dns_vpc: tuple[str, list[str]],
    drift: Drift,
    run_cli: Cli,
    in_use_as_bare_409: None,
) -> None:
    # Given two workspaces in VPCs of their own behind one DNS VPC
    mine, theirs = (_new_data_plane(stack, request, standby=False) for _ in range(2))
    d = _behind(spec_for(stack, mine, "dc-stop-d"), stack, dns_vpc)
    e = _behind(spec_for(stack, theirs, "dc-stop-e"), stack, dns_vpc)
    runs = reconciler.run_all([d, e])
    assert [r.status for r in runs] == ["SUCCEEDED"] * 2, [r.cause for r in runs]
    theirs_before = _owned(stack, {theirs.vpc_id, dns_vpc[0]})
    # And a private access settings object a human made that allows D's workspace registration (Databricks
    # refuses to delete a registration in use: as a 409 with an empty body here)
    registration = runs[0].output["summary"]["registrations"]["workspace"]["id"]
    backend = stack.emulator.backend
    pinned = backend.create_private_access_settings(
        {
            "private_access_settings_name": "dc-stop-human",
            "region": stack.config.region,
            "private_access_level": "ENDPOINT",
            "allowed_vpc_endpoint_ids": [registration],
        }
    )["private_access_settings_id"]
    # And faults on both sides: the workspace DELETE commits and the connection drops; EC2 throttles the
    # endpoint deletion twice; the first disassociation of a rule is refused as not allowed (terminal)
    dropped = stack.emulator.add_fault("commit_then_drop", method="DELETE", path="*/workspaces/*", count=1)
    throttled = stack.aws.faults.add(
        service="ec2", action="DeleteVpcEndpoints", code="RequestLimitExceeded", status=503, times=2
    )
    refused = stack.aws.faults.add(
        service="route53resolver",
        action="DisassociateResolverRule",
        code="AccessDeniedException",
        status=400,
        times=1,
    )
    # When D is destroyed
    code, result = run_cli.json("destroy", "dc-stop-d", "--mode", "delete", "--yes", "--wait")
    # Then the run stops FAILED on the refused disassociation, with the claims given back and the workspace
    # marked failed: drift leaves it alone, status says so
    assert code == 1 and result["status"] == "FAILED" and result["error"] == "AwsAccessDeniedError", result
    assert dropped.fired == 1 and refused.remaining == 0
    assert [r for r in _ledger(stack).list_shared() if r.deleting == claim_token("dc-stop-d")] == []
    code, status = run_cli.json("status", "dc-stop-d")
    assert code == 1 and status["health"] == "FAILED" and "decommission" in status["last_error"]["cause"]
    # And a resource a human deletes meanwhile (D's sts endpoint) is repaired by nothing: its event and the
    # scan leave the half-decommissioned workspace alone
    sts = runs[0].output["summary"]["endpoints"]["sts"]["id"]
    stack.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[sts])
    drift.deliver()
    tick = drift.scan_now()
    assert "dc-stop-d" not in [w.workspace_key for w in tick.workspaces]
    assert drift.remediations("dc-stop-d") == [] and drift.records("dc-stop-d") == []

    # When it is destroyed again, and the human's private access settings go while it waits
    sfn = stack.client("stepfunctions")
    code, started = run_cli.json("destroy", "dc-stop-d", "--mode", "delete", "--yes")
    assert code == 0, started
    refusal = wait_for(
        lambda: _step_details(sfn, started["execution_arn"], "DeleteRegistrations", "still in use"),
        60,
        "the registration's deletion refused as in use, and waited for",
    )
    assert registration in refusal[0] and "failed with 409" in refusal[0], refusal
    backend.delete_private_access_settings(pinned)
    done = wait_for(
        lambda: (
            (s := sfn.describe_execution(executionArn=started["execution_arn"]))["status"] != "RUNNING" and s
        ),
        120,
        "the re-run finished",
    )
    # Then it finishes, through the throttled endpoint deletion: nothing of D is left, in its VPC or in
    # Databricks
    assert done["status"] == "SUCCEEDED", done
    assert throttled.remaining == 0
    assert _owned(stack, {mine.vpc_id}) == {kind: [] for kind in theirs_before}
    assert _databricks_objects(stack, ["dc-stop-d"]) == {
        "workspaces": [],
        "networks": [],
        "private access settings": [],
    }
    assert registration not in backend.endpoints
    # And what E uses is untouched: the DNS VPC's endpoint, group and rules, E's associations and endpoints
    assert _owned(stack, {theirs.vpc_id, dns_vpc[0]}) == theirs_before
    code, status = run_cli.json("status", "dc-stop-e")
    assert code == 0 and status["health"] == "HEALTHY", status
    output = json.loads(done["output"])
    kept = {i["kind"] for i in output["kept"] if i.get("used_by") == ["dc-stop-e"]}
    assert kept == {"resolver endpoint", "resolver rule", "resolver security group"}, output["kept"]


def _step_details(sfn: Any, arn: str, step: str, text: str) -> list[str]:
    """The polls' details a step of the execution has answered so far that contain `text`."""
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    outputs = [
        json.loads(details["output"])
        for e in events
        for details in [
            e.get("taskSucceededEventDetails") or e.get("lambdaFunctionSucceededEventDetails") or {}
        ]
        if details.get("output")
    ]
    return [
        str(o["poll"]["detail"])
        for o in outputs
        if isinstance(o, dict) and text in str((o.get("poll") or {}).get("detail", ""))
    ]


def test_the_scan_removes_orphans_the_application_made(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, drift: Drift
) -> None:
    # Given a workspace, a registration of an endpoint that was deleted since, and a network made for the
    # workspace that no workspace uses
    key = "dc-orphans"
    run = reconciler.run(spec_for(stack, data_plane, key))
    assert run.status == "SUCCEEDED", run.cause
    backend = stack.emulator.backend
    ec2 = stack.client("ec2")
    services = [
        e["ServiceName"]
        for e in ec2.describe_vpc_endpoints(
            VpcEndpointIds=[run.output["summary"]["endpoints"]["relay"]["id"]]
        )["VpcEndpoints"]
    ]
    stray = ec2.create_vpc_endpoint(
        VpcId=data_plane.vpc_id,
        ServiceName=services[0],
        VpcEndpointType="Interface",
        SubnetIds=[data_plane.endpoint_subnet_id],
        SecurityGroupIds=[data_plane.endpoint_sg_id],
    )["VpcEndpoint"]["VpcEndpointId"]
    registration = backend.create_vpc_endpoint(
        {
            "vpc_endpoint_name": f"dbx-privatelink-relay-{stray}",
            "aws_vpc_endpoint_id": stray,
            "region": stack.config.region,
        }
    )["vpc_endpoint_id"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[stray])
    network = backend.create_network(
        {
            "network_name": f"{key}-network-0badc0de",
            "vpc_id": data_plane.vpc_id,
            "subnet_ids": _spare_subnets(stack, data_plane),
            "security_group_ids": [_spare_group(stack, data_plane)],
            "vpc_endpoints": {"rest_api": [], "dataplane_relay": []},
        }
    )["network_id"]
    # When the scan ticks
    tick = drift.scan_now()
    # Then both orphans were removed and reported; the workspace's own objects stay
    found = {(o.kind, o.id, o.action) for o in tick.orphans.orphans}
    assert {("registration", registration, "deleted"), ("network", network, "deleted")} <= found, tick.orphans
    assert registration not in backend.endpoints and network not in backend.networks
    assert run.output["summary"]["network"]["network_id"] in backend.networks
    assert all(r["id"] in backend.endpoints for r in run.output["summary"]["registrations"].values())
    # And the deletions name the sweep in their User-Agent (the account's audit log tells them apart)
    deleted_by = {
        c.user_agent
        for c in stack.emulator.calls.entries()
        if c.path.endswith(f"/networks/{network}") and c.method == "DELETE"
    }
    assert deleted_by == {"dbx-privatelink/0.1.0" + SWEEP_AGENT}, deleted_by


def _spare_subnets(stack: LocalStack, plane: DataPlane) -> list[str]:
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    cidrs = free_subnets(plane, 26)[-2:]
    return [
        ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock=c, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for c, az in zip(cidrs, azs, strict=True)
    ]


def _spare_group(stack: LocalStack, plane: DataPlane) -> str:
    return str(
        stack.client("ec2").create_security_group(
            VpcId=plane.vpc_id, GroupName="dc-orphan-sg", Description="x"
        )["GroupId"]
    )
