"""`plan` against moto (the seed documents' customer VPC) and the Databricks emulator on loopback: what apply
would do on both sides, and the guarantee that planning changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from integration import test_cli_stack
from integration.test_cli_stack import REGION, AwsCalls, deploy_stack, run_cli

from dbx_privatelink_cli.plan import MutatingCallError, read_only
from dbx_privatelink_local.databricks.emulator import DatabricksEmulator
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView
from dbx_privatelink_local.databricks.server import EmulatorServer
from dbx_privatelink_local.seed import SeededEnvironment, seed_environment

ACCOUNT_ID = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
CLIENT_ID, CLIENT_SECRET = "plan-test-sp", "plan-test-secret"
READS = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")


@dataclass
class World:
    session: Any
    env: SeededEnvironment
    emulator: DatabricksEmulator
    workspace_service: str
    relay_service: str

    def spec_file(self, tmp_path: Any, **changes: Any) -> str:
        spec = self.env.sample_spec("acme-analytics")
        spec.update(changes)
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        return str(path)


def _endpoint_service(ec2: Any, elb: Any, subnet_id: str, name: str) -> str:
    """A real moto endpoint service stands in for a Databricks one (moto lists no Databricks services)."""
    lb = elb.create_load_balancer(Name=name, Subnets=[subnet_id], Type="network")["LoadBalancers"][0]
    config = ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=[lb["LoadBalancerArn"]])
    return str(config["ServiceConfiguration"]["ServiceName"])


# The `aws` fixture of test_cli_stack (moto in-process, fake credentials, no endpoint from the shell).
aws = test_cli_stack.aws


@pytest.fixture
def world(aws: Any) -> Iterator[World]:
    session = aws
    emulator = DatabricksEmulator(InMemoryAwsView(), ACCOUNT_ID, {CLIENT_ID: CLIENT_SECRET})
    with EmulatorServer(emulator) as server:
        env = seed_environment(
            session, None, REGION, emulator, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        ec2 = session.client("ec2", region_name=REGION)
        elb = session.client("elbv2", region_name=REGION)
        services = {
            "workspace_service": _endpoint_service(ec2, elb, env.endpoint_subnet_id, "dbx-workspace"),
            "relay_service": _endpoint_service(ec2, elb, env.endpoint_subnet_id, "dbx-relay"),
            "private_dns_name": "privatelink.cloud.databricks.com",
        }
        deploy_stack(
            session,
            DatabricksSecretArn=env.secret_arn,
            DatabricksHost=server.url,
            EndpointServicesJson=json.dumps({"regions": {REGION: services}}),
        )
        yield World(session, env, emulator, services["workspace_service"], services["relay_service"])


def _our_workspace_endpoint(world: World) -> str:
    ec2 = world.session.client("ec2", region_name=REGION)
    endpoint = ec2.create_vpc_endpoint(
        VpcId=world.env.vpc_id,
        ServiceName=world.workspace_service,
        VpcEndpointType="Interface",
        SubnetIds=[world.env.endpoint_subnet_id],
        SecurityGroupIds=[world.env.endpoint_sg_id],
        PrivateDnsEnabled=False,  # as ensure_endpoint creates Databricks endpoints: on only once accepted
        TagSpecifications=[
            {
                "ResourceType": "vpc-endpoint",
                "Tags": [{"Key": "dbx-privatelink:owner", "Value": "dbx-privatelink"}],
            }
        ],
    )["VpcEndpoint"]
    return str(endpoint["VpcEndpointId"])


def test_plan_shows_both_sides_and_makes_only_read_calls(world: World, tmp_path: Any) -> None:
    # Given the customer VPC, our workspace endpoint already there, nothing in Databricks yet
    workspace_endpoint = _our_workspace_endpoint(world)
    ec2 = world.session.client("ec2", region_name=REGION)
    endpoints_before = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    calls = AwsCalls(world.session)
    world.emulator.calls.clear()
    # When the plan is asked for
    code, out, err = run_cli(["plan", world.spec_file(tmp_path), "--output", "json"], world.session)
    # Then apply could proceed, and the plan says what it would do
    assert code == 0, err
    plan = json.loads(out)
    assert plan["preflight"] == {"passed": True, "problems": []}
    aws_plan = {i["name"]: i for i in plan["aws"]}
    # (kept, and changed: EnablePrivateDns turns its private DNS on once Databricks accepted it)
    assert aws_plan["workspace"]["action"] == "change"
    assert aws_plan["workspace"]["id"] == workspace_endpoint
    assert aws_plan["workspace"]["calls"] == ["ModifyVpcEndpoint"]
    assert "private DNS to turn on" in aws_plan["workspace"]["detail"]
    assert aws_plan["relay"]["action"] == "create"
    assert aws_plan["relay"]["calls"] == ["CreateVpcEndpoint", "ModifyVpcEndpoint"]
    assert plan["calls"]["aws"] == {"CreateVpcEndpoint": 4, "ModifyVpcEndpoint": 2}
    assert plan["calls"]["databricks"] == {
        "POST vpc-endpoints": 2,
        "POST private-access-settings": 1,
        "POST networks": 1,
        "POST workspaces": 1,
    }
    assert {aws_plan[r]["action"] for r in ("s3", "sts", "kinesis-streams")} == {"create"}
    databricks = {(i["kind"], i["name"]): i for i in plan["databricks"]["items"]}
    assert plan["databricks"]["error"] is None
    assert f"secret {world.env.secret_arn}" in plan["databricks"]["note"]
    assert databricks[("vpc endpoint registration", "workspace")]["action"] == "register"
    assert databricks[("private access settings", "acme-analytics-private-access")]["action"] == "create"
    assert next(i for i in plan["databricks"]["items"] if i["kind"] == "network")["action"] == "create"
    assert databricks[("workspace", "acme-analytics")]["action"] == "create"
    # and nothing changed: every AWS call was a read, every Databricks call a GET (and the token)
    assert calls.counts, "the plan made no AWS call at all"
    assert all(op.startswith(READS) for op in calls.operations()), calls.counts
    assert {"DescribeStacks", "DescribeVpcEndpoints", "GetSecretValue"} <= calls.operations()
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == endpoints_before
    databricks_calls = world.emulator.calls_by_operation()
    assert databricks_calls
    assert all(op.startswith(("GET ", "POST /oidc/")) for op in databricks_calls), databricks_calls


def test_plan_compares_existing_databricks_objects_field_by_field(world: World, tmp_path: Any) -> None:
    # Given private access settings of the same name that differ from the spec (public access off)
    world.emulator.backend.create_private_access_settings(
        {
            "private_access_settings_name": "acme-analytics-private-access",
            "region": REGION,
            "public_access_enabled": False,
            "private_access_level": "ACCOUNT",
        }
    )
    # When the plan is shown as text
    code, out, _err = run_cli(["plan", world.spec_file(tmp_path)], world.session)
    # Then it says they are replaced, and which field changes
    assert code == 0
    line = next(line for line in out.splitlines() if "private access settings" in line)
    assert line.split()[:4] == ["replace", "private", "access", "settings"]
    assert "public_access_enabled: False -> True" in out
    assert "Preflight: passed" in out


def test_plan_reports_preflight_problems_and_exits_1(world: World, tmp_path: Any) -> None:
    ec2 = world.session.client("ec2", region_name=REGION)
    ec2.modify_vpc_attribute(VpcId=world.env.vpc_id, EnableDnsHostnames={"Value": False})
    code, out, _err = run_cli(["plan", world.spec_file(tmp_path)], world.session)
    assert code == 1
    assert "Preflight: 1 problem(s); apply would stop there and change nothing:" in out
    assert f"network.vpc_id: VPC {world.env.vpc_id} has enableDnsHostnames off" in out
    assert "not planned: preflight must pass first" in out


def test_without_databricks_credentials_only_aws_is_planned(world: World, tmp_path: Any) -> None:
    sm = world.session.client("secretsmanager", region_name=REGION)
    sm.delete_secret(SecretId=world.env.secret_arn, ForceDeleteWithoutRecovery=True)
    code, out, _err = run_cli(["plan", world.spec_file(tmp_path), "--output", "json"], world.session)
    plan = json.loads(out)
    assert code == 0
    assert plan["aws"]
    assert plan["databricks"]["items"] == []
    assert plan["databricks"]["note"].startswith("not planned: cannot read the Databricks secret")


def test_the_read_only_guard_refuses_a_mutating_call(world: World) -> None:
    ec2 = world.session.client("ec2", region_name=REGION)
    with read_only(world.session):
        guarded = world.session.client("ec2", region_name=REGION)
        guarded.describe_vpcs()
        with pytest.raises(MutatingCallError, match="ec2:CreateVpc"):
            guarded.create_vpc(CidrBlock="10.99.0.0/16")
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.99.0.0/16"]


def test_plan_lists_the_dns_branch_with_its_calls(world: World, tmp_path: Any) -> None:
    # Given the sample spec with custom DNS (seed 000), nothing of it made yet
    spec = world.env.sample_spec("acme-analytics", custom_dns=True)
    path = tmp_path / "dns.json"
    path.write_text(json.dumps(spec))
    calls = AwsCalls(world.session)
    # When the plan is shown, as text and as JSON
    code, out, _err = run_cli(["plan", str(path)], world.session)
    json_code, json_out, _ = run_cli(["plan", str(path), "--output", "json"], world.session)
    # Then the DNS branch is listed in the order the steps reach it, each with the calls apply makes
    assert code == json_code == 0, out
    assert "DNS (Route 53 Resolver, private hosted zones)" in out
    dns = {(i["kind"], i["name"].split(" ")[0]): i for i in json.loads(json_out)["dns"]}
    assert dns[("resolver security group", "outbound")]["calls"] == [
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupEgress",
    ]
    assert dns[("resolver endpoint", "outbound")]["calls"] == ["CreateResolverEndpoint"]
    assert dns[("resolver rule", "forward-all")]["calls"] == ["CreateResolverRule"]
    assert dns[("resolver rule", "aws-names")]["calls"] == ["CreateResolverRule"]
    associations = [i for i in json.loads(json_out)["dns"] if i["kind"] == "rule association"]
    assert [i["action"] for i in associations] == ["create", "create"]
    assert "Mutating AWS calls: 15 (" in out and "AssociateResolverRule x2" in out
    # and nothing was written on the way
    assert all(op.startswith(READS) for op in calls.operations()), calls.counts


def test_plan_names_the_databricks_objects_a_new_workspace_lacks(world: World, tmp_path: Any) -> None:
    # Given a spec whose credentials and storage configuration do not exist in the account
    databricks = {
        **world.env.sample_spec("acme-analytics")["databricks"],
        "credentials_id": "no-such-credentials",
        "storage_configuration_id": "no-such-storage",
    }
    # When the plan is asked for
    code, out, _err = run_cli(
        ["plan", world.spec_file(tmp_path, databricks=databricks), "--output", "json"], world.session
    )
    # Then it exits 1 naming both fields, as preflight would before any change
    plan = json.loads(out)
    assert code == 1
    assert any(
        p.startswith("databricks.credentials_id: no-such-credentials does not exist")
        for p in plan["preflight"]["problems"]
    )
    assert any(
        p.startswith("databricks.storage_configuration_id: no-such-storage")
        for p in plan["preflight"]["problems"]
    )
    assert plan["databricks"]["items"] == []
