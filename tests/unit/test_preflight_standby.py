"""Preflight holds the standby set (network.standby) to the same requirements as the primary workspace set,
read from EC2 (moto, in process) built the way the local seed builds a data plane."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.reconcile.preflight import assess
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.seed import DataPlane, create_data_plane

REGION = "us-east-1"
CIDR = "10.0.0.0/22"


@pytest.fixture
def aws() -> Iterator[tuple[Any, DataPlane, Deps]]:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        ec2 = session.client("ec2")
        azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
        plane = create_data_plane(ec2, CIDR, "preflight", azs, standby=True)
        yield ec2, plane, Deps(settings=Settings(region=REGION, owner_tag="dbx-privatelink"), session=session)


def _spec(plane: DataPlane, **standby: Any) -> dict[str, Any]:
    return {
        "workspace_key": "standby-check",
        "region": REGION,
        "databricks": {
            "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "credentials_id": "c",
            "storage_configuration_id": "s",
            "workspace": {"name": "standby-check"},
        },
        "network": {
            "vpc_id": plane.vpc_id,
            "workspace_subnet_ids": plane.workspace_subnet_ids,
            "workspace_security_group_ids": [plane.workspace_sg_id],
            "endpoint_subnet_ids": [plane.endpoint_subnet_id],
            "endpoint_security_group_id": plane.endpoint_sg_id,
            "standby": {
                "workspace_subnet_ids": plane.standby_subnet_ids,
                "workspace_security_group_ids": [plane.standby_sg_id],
                **standby,
            },
        },
        "endpoints": {"aws_services": ["sts"]},
    }


def _network_problems(doc: dict[str, Any], deps: Deps) -> list[str]:
    # The Databricks endpoint services are the local stack's business: only the network is judged here.
    return [p for p in assess(parse_spec(doc), deps).problems if p.startswith("network")]


def test_the_seeded_standby_set_passes(aws: tuple[Any, DataPlane, Deps]) -> None:
    _, plane, deps = aws
    assert _network_problems(_spec(plane), deps) == []


def test_standby_subnets_are_checked_like_the_primary_ones(aws: tuple[Any, DataPlane, Deps]) -> None:
    ec2, plane, deps = aws
    zone = ec2.describe_subnets(SubnetIds=[plane.standby_subnet_ids[0]])["Subnets"][0]["AvailabilityZone"]
    # Given a standby subnet in the zone of the other one, a /27, and one in another VPC
    same_zone = ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock="10.0.0.128/27", AvailabilityZone=zone)
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/24")["Vpc"]["VpcId"]
    elsewhere = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.0.0/25", AvailabilityZone=zone)
    subnets = [plane.standby_subnet_ids[0], same_zone["Subnet"]["SubnetId"], elsewhere["Subnet"]["SubnetId"]]
    # When preflight reads them, then each problem names the standby field and the fix
    problems = _network_problems(_spec(plane, workspace_subnet_ids=subnets), deps)
    assert all(p.startswith("network.standby.workspace_subnet_ids: ") for p in problems), problems
    assert any("one workspace subnet per availability zone" in p for p in problems), problems
    assert any("is /27; use a netmask between /17 and /26" in p for p in problems), problems
    assert any(f"is in {other_vpc}, not in {plane.vpc_id}" in p for p in problems), problems


def test_standby_groups_need_the_workspace_rules(aws: tuple[Any, DataPlane, Deps]) -> None:
    ec2, plane, deps = aws
    lo, hi = port_ranges(default_catalog().workspace_sg_egress_tcp_ports)[0]
    # Given the standby group without its first control-plane egress rule
    ec2.revoke_security_group_egress(
        GroupId=plane.standby_sg_id,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    # Then preflight names the standby group and the port
    problems = _network_problems(_spec(plane), deps)
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    assert problems == [
        f"network.standby.workspace_security_group_ids: {plane.standby_sg_id} must allow egress TCP {ports} "
        "(Databricks control plane, relay and metastore)"
    ]
