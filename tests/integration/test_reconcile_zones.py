"""dns.private_zones against moto's Route 53 (with the local stack's patches: Z-prefixed zone ids, changes
PENDING until propagated): preflight, association of a missing VPC once, the INSYNC poll, the scan's finding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.errors import PreflightFailedError, ZoneChangeNotInSyncTimeoutError
from dbx_privatelink.models.base import PollState
from dbx_privatelink.models.dns_checks import CheckZoneAssociationsInput
from dbx_privatelink.models.dns_steps import EnsureZoneAssociationsInput
from dbx_privatelink.reconcile.zone_checks import missing_associations, zone_problems
from dbx_privatelink.reconcile.zones import check_zone_associations, ensure_zone_associations
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.aws import route53_patches
from dbx_privatelink_local.timescale import TIME_SCALE

REGION = "us-east-1"


@dataclass
class World:
    session: Any
    deps: Deps
    vpcs: list[str]
    zone_id: str
    calls: list[str]

    @property
    def route53(self) -> Any:
        return self.session.client("route53")

    def vpcs_of_zone(self) -> set[str]:
        return {v["VPCId"] for v in self.route53.get_hosted_zone(Id=self.zone_id)["VPCs"]}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    route53_patches.install()
    monkeypatch.setattr(TIME_SCALE, "factor", 0.0)  # changes INSYNC at once unless a test says otherwise
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        ec2 = session.client("ec2", region_name=REGION)
        vpcs = [ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"] for n in range(3)]
        zone_id = (
            session.client("route53")
            .create_hosted_zone(
                Name="data.example.internal",
                CallerReference="zone",
                VPC={"VPCRegion": REGION, "VPCId": vpcs[2]},
                HostedZoneConfig={"PrivateZone": True, "Comment": "test"},
            )["HostedZone"]["Id"]
            .rsplit("/", 1)[-1]
        )
        calls: list[str] = []
        session.events.register("before-call.route53", lambda model, **kw: calls.append(model.name))
        yield World(
            session,
            Deps(settings=Settings(region=REGION, owner_tag="zones-test"), session=session),
            vpcs,
            zone_id,
            calls,
        )


def _spec(world: World, zones: list[dict[str, Any]]) -> WorkspaceSpec:
    return parse_spec(
        {
            "workspace_key": "zones-ws",
            "region": REGION,
            "databricks": {
                "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
                "credentials_id": "creds",
                "storage_configuration_id": "storage",
                "workspace": {"name": "zones-ws"},
            },
            "network": {
                "vpc_id": world.vpcs[0],
                "workspace_subnet_ids": ["subnet-0000000000000001", "subnet-0000000000000002"],
                "workspace_security_group_ids": ["sg-0000000000000001"],
                "endpoint_subnet_ids": ["subnet-0000000000000003"],
                "endpoint_security_group_id": "sg-0000000000000002",
            },
            "dns": {"private_zones": zones},
        }
    )


def test_local_zone_ids_look_like_aws_ones(world: World) -> None:
    assert world.zone_id.startswith("Z") and len(world.zone_id) == 22


def test_a_missing_vpc_is_associated_once_and_polled_until_insync(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(world, [{"hosted_zone_id": world.zone_id, "vpc_ids": [world.vpcs[0], world.vpcs[2]]}])
    assert zone_problems(spec, world.deps) == []
    assert missing_associations(spec, world.deps) == [
        f"private hosted zone {world.zone_id} (data.example.internal) is not associated with {world.vpcs[0]}"
    ]
    # When the step runs while Route 53 propagates changes in real time
    monkeypatch.setattr(TIME_SCALE, "factor", 1.0)
    result = ensure_zone_associations(EnsureZoneAssociationsInput(spec=spec), world.deps)
    # Then the missing VPC is associated, the one already there is found, and the change is PENDING
    assert [(a.vpc_id, a.action) for a in result.zone_associations] == [
        (world.vpcs[0], "created"),
        (world.vpcs[2], "found"),
    ]
    assert world.vpcs_of_zone() == {world.vpcs[0], world.vpcs[2]}
    inp = CheckZoneAssociationsInput(zone_associations=result.zone_associations, poll=PollState())
    waiting = check_zone_associations(inp, world.deps)
    assert not waiting.ready and "is PENDING" in waiting.detail and waiting.wait_seconds > 0
    # And once propagated the poll is ready
    monkeypatch.setattr(TIME_SCALE, "factor", 0.0)
    assert check_zone_associations(inp.model_copy(update={"poll": waiting}), world.deps).ready
    # And a second run associates nothing
    world.calls.clear()
    again = ensure_zone_associations(EnsureZoneAssociationsInput(spec=spec), world.deps)
    assert {a.action for a in again.zone_associations} == {"found"}
    assert "AssociateVPCWithHostedZone" not in world.calls
    assert missing_associations(spec, world.deps) == []


def test_the_poll_is_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(world, [{"hosted_zone_id": world.zone_id, "vpc_ids": [world.vpcs[1]]}])
    monkeypatch.setattr(TIME_SCALE, "factor", 1.0)
    result = ensure_zone_associations(EnsureZoneAssociationsInput(spec=spec), world.deps)
    poll = PollState(attempt=10_000)
    with pytest.raises(ZoneChangeNotInSyncTimeoutError, match="PENDING"):
        check_zone_associations(
            CheckZoneAssociationsInput(zone_associations=result.zone_associations, poll=poll), world.deps
        )


def test_unknown_or_public_zones_and_missing_vpcs_are_named_before_any_change(world: World) -> None:
    public = world.route53.create_hosted_zone(Name="example.com", CallerReference="public")["HostedZone"][
        "Id"
    ]
    public_id = public.rsplit("/", 1)[-1]
    spec = _spec(
        world,
        [
            {"hosted_zone_id": "Z0000000000000000000000", "vpc_ids": [world.vpcs[0]]},
            {"hosted_zone_id": public_id, "vpc_ids": ["vpc-0123456789abcdef0"]},
        ],
    )
    problems = zone_problems(spec, world.deps)
    assert problems == [
        "dns.private_zones[0].hosted_zone_id: no hosted zone Z0000000000000000000000 in this account; check the id",
        f"dns.private_zones[1].hosted_zone_id: {public_id} (example.com) is a public zone; only private hosted "
        "zones are associated with VPCs",
        f"dns.private_zones[1].vpc_ids: VPC vpc-0123456789abcdef0 does not exist in {REGION}",
    ]
    world.calls.clear()
    with pytest.raises(PreflightFailedError, match="this step associated nothing"):
        ensure_zone_associations(EnsureZoneAssociationsInput(spec=spec), world.deps)
    assert "AssociateVPCWithHostedZone" not in world.calls
