"""`plan` tells the truth on the local stack: the mutating calls it lists are exactly the ones apply then makes
(custom DNS with and without the inbound pattern, on a fresh data plane and on an applied one), and what a
later step would stop at is refused by plan and by preflight before any change."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dbx_privatelink_local.seed import DataPlane
from dbx_privatelink_local.stack import LocalStack

from . import test_decommission as _decommission
from .conftest import Reconciler, Run, free_subnets, spec_for
from .test_custom_dns import _custom_dns, _inbound_subnets

pytestmark = pytest.mark.e2e

Cli = _decommission.Cli
run_cli = _decommission.run_cli


def _plan(cli: Cli, spec: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    path = tmp_path / f"{spec['workspace_key']}.json"
    path.write_text(json.dumps(spec))
    return cli.json("plan", str(path))


def _planned(plan: dict[str, Any]) -> tuple[Counter[str], Counter[str]]:
    return Counter(plan["calls"]["aws"]), Counter(plan["calls"]["databricks"])


def _made(run: Run) -> tuple[Counter[str], Counter[str]]:
    """The run's mutating calls in plan's words: AWS operation names, "METHOD collection" for Databricks
    ("POST /api/2.0/accounts/{account_id}/networks" is "POST networks")."""
    databricks: Counter[str] = Counter()
    for op, n in run.databricks_mutations.items():
        method, path = op.split(" ", 1)
        databricks[f"{method} {path.split('{account_id}/', 1)[1].split('/')[0]}"] += n
    return Counter(run.aws_mutations), databricks


def _inbound(stack: LocalStack, plane: DataPlane, domain: str) -> dict[str, Any]:
    env = stack.environment
    assert env is not None
    return {
        "vpc_id": plane.vpc_id,
        "subnet_ids": _inbound_subnets(stack, plane),
        "allowed_cidrs": ["10.20.0.0/24"],
        "domains": [domain],
        "peered_vpcs": [{"vpc_id": env.peered_vpc_id, "subnet_ids": env.peered_subnet_ids}],
    }


@pytest.mark.parametrize("inbound", [False, True], ids=["custom-dns", "custom-dns-and-inbound"])
def test_plan_lists_exactly_the_mutating_calls_apply_makes(
    stack: LocalStack,
    reconciler: Reconciler,
    data_plane: DataPlane,
    run_cli: Cli,
    tmp_path: Path,
    inbound: bool,
) -> None:
    # Given the sample spec with custom DNS (and the inbound pattern) on a fresh data plane
    key = f"truth-{'in' if inbound else 'out'}"
    spec = spec_for(stack, data_plane, key)
    spec["dns"] = _custom_dns(stack, data_plane)
    if inbound:
        spec["dns"]["inbound"] = _inbound(stack, data_plane, f"{key}.example.internal")
    # When it is planned, then applied
    code, plan = _plan(run_cli, spec, tmp_path)
    assert code == 0, plan["preflight"]
    run = reconciler.run(spec)
    # Then the plan listed the DNS branch and exactly the calls apply made, on both sides
    assert run.status == "SUCCEEDED", run.cause
    # (the DNS VPC's endpoint and rules may be there already, shared with earlier workspaces; the
    # associations with this new data-plane VPC are not)
    kinds = {i["kind"] for i in plan["dns"]}
    assert {"resolver endpoint", "resolver rule", "rule association"} <= kinds, plan["dns"]
    assert _planned(plan) == _made(run)
    assert _made(run)[0]["AssociateResolverRule"] >= 2

    # When the applied spec is planned and applied again
    code, again_plan = _plan(run_cli, spec, tmp_path)
    again = reconciler.run(spec)
    # Then the plan keeps everything and apply changes nothing
    assert code == 0 and again.status == "SUCCEEDED", again.cause
    assert {i["action"] for i in [*again_plan["aws"], *again_plan["dns"]]} == {"keep"}, again_plan
    assert _planned(again_plan) == _made(again) == (Counter(), Counter())

    if inbound:
        return
    # When the inbound pattern is added to the applied spec
    spec["dns"]["inbound"] = _inbound(stack, data_plane, "truth-added.example.internal")
    code, added_plan = _plan(run_cli, spec, tmp_path)
    added = reconciler.run(spec)
    # Then the plan lists the inbound endpoint, the peered VPC's rule and its association: what apply made
    assert code == 0 and added.status == "SUCCEEDED", added.cause
    # (the peered VPC's endpoint may be there already, shared with earlier workspaces)
    created = {(i["kind"], i["name"].split(" ")[0]) for i in added_plan["dns"] if i["action"] == "create"}
    assert {("resolver endpoint", "inbound"), ("resolver rule", "inbound-forward")} <= created, created
    assert _planned(added_plan) == _made(added)
    assert _made(added)[0]["CreateResolverEndpoint"] >= 1


def test_resolver_subnets_in_one_az_are_refused_before_any_change(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, run_cli: Cli, tmp_path: Path
) -> None:
    # Given an inbound endpoint asked for in two subnets of one Availability Zone
    ec2 = stack.client("ec2")
    same_az = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    subnets = [
        ec2.create_subnet(VpcId=data_plane.vpc_id, CidrBlock=cidr, AvailabilityZone=same_az)["Subnet"][
            "SubnetId"
        ]
        for cidr in free_subnets(data_plane, 25)[:2]
    ]
    spec = spec_for(stack, data_plane, "truth-one-az")
    spec["dns"] = {
        **_custom_dns(stack, data_plane),
        "inbound": {
            "vpc_id": data_plane.vpc_id,
            "subnet_ids": subnets,
            "allowed_cidrs": ["10.20.0.0/24"],
            "domains": ["one-az.example.internal"],
        },
    }
    # When it is planned, then applied
    code, plan = _plan(run_cli, spec, tmp_path)
    run = reconciler.run(spec)
    # Then plan refuses it and preflight stops the run, naming the subnets and the AZ, with no change made
    problems = "\n".join(plan["preflight"]["problems"])
    assert code == 1 and f"are both in {same_az}" in problems, problems
    assert run.status == "FAILED" and run.error == "PreflightFailedError", run.cause
    assert f"are both in {same_az}" in (run.cause or "")
    assert _made(run) == (Counter(), Counter())


def test_workspace_subnets_of_another_network_are_refused_before_any_change(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, run_cli: Cli, tmp_path: Path
) -> None:
    # Given a workspace applied on the data plane's workspace subnets and group
    first = reconciler.run(spec_for(stack, data_plane, "truth-owner"))
    assert first.status == "SUCCEEDED", first.cause
    # When a second workspace is planned, then applied, on the same subnets and group
    spec = spec_for(stack, data_plane, "truth-reuser")
    code, plan = _plan(run_cli, spec, tmp_path)
    run = reconciler.run(spec)
    # Then plan refuses it and preflight stops the run, naming each subnet and the network holding it,
    # before the private access settings (or anything else) are made
    problems = "\n".join(plan["preflight"]["problems"])
    assert code == 1, plan
    for subnet in data_plane.workspace_subnet_ids:
        assert f"network.workspace_subnet_ids: {subnet} is already used by Databricks network" in problems
    assert f"network.workspace_security_group_ids: {data_plane.workspace_sg_id} is already used" in problems
    assert plan["databricks"]["items"] == []
    assert run.status == "FAILED" and run.error == "PreflightFailedError", run.cause
    assert "is already used by Databricks network" in (run.cause or "")
    assert _made(run) == (Counter(), Counter())
