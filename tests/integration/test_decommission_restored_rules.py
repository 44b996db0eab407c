"""The rules drift repairs add to a customer's security group, against moto's EC2: added with their
description by the repair's own code (the endpoint group's ingress), found by the decommission's plan,
revoked by RevokeRestoredRules; the customer's own rules stay, and so does everything on a group another
managed workspace names. While another managed workspace's stored spec cannot be read, neither these rules
nor a shared resource are taken (ReleaseSharedResources, against moto's DynamoDB)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.aws.ec2 import Ec2Client
from dbx_privatelink.catalog import default_catalog
from dbx_privatelink.decommission.models import (
    DecommissionContext,
    DecommissionPlan,
    DeletionInput,
    ReleaseSharedInput,
)
from dbx_privatelink.decommission.rules import (
    describe_permission,
    restored_permissions,
    revoke_restored_rules,
)
from dbx_privatelink.decommission.shared import release_shared_resources
from dbx_privatelink.drift.aws import DriftEc2Client
from dbx_privatelink.drift.prerequisites import endpoint_group_repairs
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Deps, Settings
from tests.tables import app_table
from tests.unit.test_decommission_plan import SPEC, TOKEN

REGION = "us-east-1"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Deps, Any, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        table = app_table(session)
        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(VpcId=vpc, GroupName="customer", Description="theirs")["GroupId"]
        deps = Deps(
            settings=Settings(region=REGION, owner_tag="dbx-privatelink", table_name=table), session=session
        )
        yield deps, ec2, group


def _plan_item(group: str) -> DeletionInput:
    spec = copy.deepcopy(SPEC)
    return DeletionInput(
        context=DecommissionContext(
            workspace_key="acme", mode="delete", region=REGION, account_id="a", token=TOKEN, spec=spec
        ),
        plan=DecommissionPlan.model_validate(
            {
                "workspace_key": "acme",
                "mode": "delete",
                "items": [{"kind": "restored security group rule", "name": group, "action": "delete"}],
            }
        ),
    )


def _cidrs(ec2: Any, group: str) -> list[tuple[str, int, str]]:
    [g] = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    return sorted(
        (p["IpProtocol"], p.get("FromPort", -1), r["CidrIp"])
        for p in g["IpPermissions"]
        for r in p["IpRanges"]
    )


def _repair(deps: Deps, ec2: Any, group: str) -> int:
    """What a drift remediation does to an endpoint group that lost its ingress: the same repairs, by the
    same writer."""
    client = Ec2Client(ec2)
    [info] = client.get_security_groups([group])
    vpc = client.get_vpc(info.vpc_id)
    assert vpc is not None
    repairs = endpoint_group_repairs(info, default_catalog(), parse_spec(SPEC).network.workspace_sets(), vpc)
    return sum(DriftEc2Client(ec2).authorize(group, r.direction, r.permission) for r in repairs)


def test_the_repairs_rules_go_and_the_customers_stay(world: tuple[Deps, Any, str]) -> None:
    deps, ec2, group = world
    # Given a customer's group with its own ingress 443 from an on-prem network, and the rules a drift repair
    # added (the endpoint ports from the VPC)
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "192.168.0.0/16"}]}
        ],
    )
    added = _repair(deps, ec2, group)
    assert added > 0  # the ports the customer's rule does not already cover
    # When the plan reads it, then exactly the repair's rules are found
    permissions = Ec2Client(ec2).group_permissions(group) or {}
    described = [describe_permission("ingress", p) for p in restored_permissions(permissions["ingress"])]
    assert len(described) == added and all(d.endswith("from 10.0.0.0/16") for d in described), described
    # When RevokeRestoredRules runs for the group
    revoke_restored_rules(_plan_item(group), deps)
    # Then the repair's rules are gone and the customer's stays; a second run finds nothing more to do
    assert _cidrs(ec2, group) == [("tcp", 443, "192.168.0.0/16")]
    revoke_restored_rules(_plan_item(group), deps)
    assert _cidrs(ec2, group) == [("tcp", 443, "192.168.0.0/16")]


def test_a_group_another_managed_workspace_names_keeps_its_restored_rules(
    world: tuple[Deps, Any, str],
) -> None:
    deps, ec2, group = world
    added = _repair(deps, ec2, group)
    beta = copy.deepcopy(SPEC)
    beta["workspace_key"] = "beta"
    beta["network"]["endpoint_security_group_id"] = group
    StoreClient(deps.store._t).put_desired(parse_spec(beta))
    progress = revoke_restored_rules(_plan_item(group), deps)
    assert [(k.name, k.used_by) for k in progress.kept] == [(group, ["beta"])]
    assert len(_cidrs(ec2, group)) == added


def test_a_workspace_whose_stored_spec_no_longer_validates_keeps_every_restored_rule(
    world: tuple[Deps, Any, str],
) -> None:
    # Given another managed workspace whose stored spec no longer validates (written by an older version)
    deps, ec2, group = world
    added = _repair(deps, ec2, group)
    _unreadable_beta(deps)
    # When RevokeRestoredRules runs for a group only this workspace's spec names
    progress = revoke_restored_rules(_plan_item(group), deps)
    # Then nothing is revoked (what beta uses is unknown), and the reason says what to do
    assert [(k.name, k.used_by) for k in progress.kept] == [(group, ["beta"])]
    assert "re-apply it with a valid spec, or decommission it first" in progress.kept[0].reason
    assert len(_cidrs(ec2, group)) == added


def _unreadable_beta(deps: Deps) -> None:
    """Workspace beta, managed, with a stored spec that no longer validates."""
    beta = copy.deepcopy(SPEC)
    beta["workspace_key"] = "beta"
    StoreClient(deps.store._t).put_desired(parse_spec(beta))
    beta["network"]["vpc_id"] = "not-a-vpc"
    deps.store._t.update_item(
        Key={"pk": "WS#beta", "sk": "DESIRED"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "spec"},
        ExpressionAttributeValues={":s": json.dumps(beta)},
    )


def test_a_workspace_whose_stored_spec_no_longer_validates_keeps_every_shared_resource(
    world: tuple[Deps, Any, str],
) -> None:
    # Given a shared endpoint only this workspace refers to, planned for deletion before beta's spec broke
    deps, _ec2, _group = world
    key = SharedKey("vpc-endpoint", "vpc-0a1b2c3d4e5f60718|com.amazonaws.us-east-1.sts")
    deps.ledger.refer("acme", [key])
    _unreadable_beta(deps)
    step = _plan_item("sg-unused")
    item = {"kind": "vpc endpoint", "name": key.key, "ids": ["vpce-1"], "action": "delete"}
    plan = step.plan.model_copy(
        update={
            "items": [step.plan.items[0].model_copy(update={**item, "shared_key": key.pk, "eligible": True})]
        }
    )
    # When ReleaseSharedResources runs
    out = release_shared_resources(ReleaseSharedInput(context=step.context, plan=plan), deps)
    # Then this workspace's reference is released, but the endpoint is not claimed for deletion
    assert out.claimed == [] and [(k.name, k.used_by) for k in out.kept] == [(key.key, ["beta"])]
    assert "re-apply it with a valid spec" in out.kept[0].reason
    record = deps.ledger.get(key)
    assert record is not None and record.refs == () and record.deleting == ""
