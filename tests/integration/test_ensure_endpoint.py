"""EnsureEndpoint against moto's EC2: an interface endpoint carries every group its plan names (the endpoint
group for the AWS services, whatever the workspace sets); a group removed by hand is added back, nothing
else changes; two workspaces' plans for one VPC's endpoint converge on one endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.models.endpoint_steps import EnsureEndpointInput
from dbx_privatelink.models.endpoints import EndpointPlan, EndpointState
from dbx_privatelink.reconcile.aws_services import aws_endpoint_plans
from dbx_privatelink.reconcile.endpoints import ensure_endpoint
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps, Settings
from tests.tables import app_table

REGION = "us-east-1"


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_aws_service_endpoints_carry_the_endpoint_group_not_the_sets_groups() -> None:
    net = {
        "vpc_id": "vpc-0a0a0a0a0a0a0a0a0",
        "workspace_subnet_ids": ["subnet-0000000000000001", "subnet-0000000000000002"],
        "workspace_security_group_ids": ["sg-0000000000000001"],
        "endpoint_subnet_ids": ["subnet-0000000000000003"],
        "endpoint_security_group_id": "sg-0000000000000002",
        "standby": {
            "workspace_subnet_ids": ["subnet-0000000000000004", "subnet-0000000000000005"],
            "workspace_security_group_ids": ["sg-0000000000000004"],
        },
    }
    spec = parse_spec(
        {
            "workspace_key": "sets-ws",
            "region": REGION,
            "databricks": {
                "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
                "credentials_id": "creds",
                "storage_configuration_id": "storage",
                "workspace": {"name": "sets-ws"},
            },
            "network": net,
        }
    )
    plans = {p.role: p for p in aws_endpoint_plans(spec, "rtb-0000000000000001", [])}
    # One group for every workspace of the VPC: the groups-per-interface quota (5) never grows with them.
    assert plans["sts"].security_group_ids == ["sg-0000000000000002"]
    assert plans["s3"].security_group_ids == []


def _ensured(inp: EnsureEndpointInput, deps: Deps) -> EndpointState:
    """The endpoint of one EnsureEndpoint call (the pace has room: no ticket is handed back)."""
    out = ensure_endpoint(inp, deps)
    assert out.endpoint is not None, out.pacing
    return out.endpoint


def test_a_group_removed_from_an_endpoint_is_added_back(ec2: Any) -> None:
    client = ec2.client("ec2", region_name=REGION)
    vpc = client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = [client.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"] for n in "ab"]
    plan = EndpointPlan(
        role="sts",
        vpc_id=vpc,
        service_name=f"com.amazonaws.{REGION}.sts",
        subnet_ids=[subnet],
        security_group_ids=groups,
    )
    deps = Deps(
        settings=Settings(region=REGION, owner_tag="endpoint-test", table_name=app_table(ec2)), session=ec2
    )
    calls: list[str] = []
    ec2.events.register("before-call.ec2", lambda model, **kw: calls.append(model.name))

    def groups_of(endpoint_id: str) -> set[str]:
        [e] = client.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
        return {g["GroupId"] for g in e["Groups"]}

    created = _ensured(EnsureEndpointInput(workspace_key="sets-ws", region=REGION, plan=plan), deps)
    assert created.action == "created" and groups_of(created.vpc_endpoint_id) == set(groups)
    # Given a human removed one group; when the step runs again
    client.modify_vpc_endpoint(VpcEndpointId=created.vpc_endpoint_id, RemoveSecurityGroupIds=[groups[1]])
    assert groups_of(created.vpc_endpoint_id) == {groups[0]}
    calls.clear()
    repaired = _ensured(EnsureEndpointInput(workspace_key="sets-ws", region=REGION, plan=plan), deps)
    # Then the same endpoint gets it back, and a third run changes nothing
    assert (repaired.vpc_endpoint_id, repaired.action) == (created.vpc_endpoint_id, "updated")
    assert groups_of(created.vpc_endpoint_id) == set(groups)
    assert calls.count("ModifyVpcEndpoint") == 1 and "CreateVpcEndpoint" not in calls
    calls.clear()
    again = _ensured(EnsureEndpointInput(workspace_key="sets-ws", region=REGION, plan=plan), deps)
    assert again.action == "found" and "ModifyVpcEndpoint" not in calls
