"""`status` from the store's contents (a table shaped as template.yaml's) and live reads on moto: the seed
documents' customer VPC, and for the DNS half a Route 53 Resolver setup as the custom DNS branch leaves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from integration.test_cli_plan import _endpoint_service
from integration.test_cli_stack import REGION, aws, deploy_stack, run_cli  # noqa: F401 (aws is a fixture)
from moto.route53resolver.models import route53resolver_backends

from dbx_privatelink.drift.scan import check_dns
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import RunRecord, StoreClient
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.databricks.emulator import DatabricksEmulator
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView
from dbx_privatelink_local.seed import SeededEnvironment, seed_environment

KEY = "acme-analytics"
ACCOUNT_ID = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"


@dataclass
class World:
    """The seeded customer environment on moto and the stack's store; Databricks is not reachable (the
    stack has no secret), so status checks the AWS side live."""

    session: Any
    env: SeededEnvironment
    store: StoreClient

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)


@pytest.fixture
def world(aws: Any) -> Iterator[World]:  # noqa: F811
    emulator = DatabricksEmulator(InMemoryAwsView(), ACCOUNT_ID, {"status-sp": "status-secret"})
    env = seed_environment(aws, None, REGION, emulator, client_id="status-sp", client_secret="status-secret")
    ec2, elb = aws.client("ec2", region_name=REGION), aws.client("elbv2", region_name=REGION)
    services = {
        "workspace_service": _endpoint_service(ec2, elb, env.endpoint_subnet_id, "dbx-workspace"),
        "relay_service": _endpoint_service(ec2, elb, env.endpoint_subnet_id, "dbx-relay"),
        "private_dns_name": "privatelink.cloud.databricks.com",
    }
    outputs = deploy_stack(aws, EndpointServicesJson=json.dumps({"regions": {REGION: services}}))
    yield World(
        aws, env, StoreClient(aws.resource("dynamodb", region_name=REGION).Table(outputs["TableName"]))
    )


def _spec(world: World, *, custom_dns: bool = False) -> dict[str, Any]:
    spec = world.env.sample_spec(KEY, custom_dns=custom_dns)
    spec["drift"] = {"mode": "off"}
    return spec


def _endpoint(world: World, *, private_dns: bool) -> str:
    return str(
        world.client("ec2").create_vpc_endpoint(
            VpcId=world.env.vpc_id,
            ServiceName="com.amazonaws.us-east-1.sts",
            VpcEndpointType="Interface",
            SubnetIds=[world.env.endpoint_subnet_id],
            PrivateDnsEnabled=private_dns,
            # Ours, as ensure_endpoint tags them: preflight counts an endpoint it does not manage as in the way.
            TagSpecifications=[
                {
                    "ResourceType": "vpc-endpoint",
                    "Tags": [{"Key": "dbx-privatelink:owner", "Value": "dbx-privatelink"}],
                }
            ],
        )["VpcEndpoint"]["VpcEndpointId"]
    )


def _record_success(
    world: World,
    endpoints: dict[str, str],
    *,
    dns: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> None:
    store = world.store
    store.put_desired(parse_spec(spec or _spec(world)))
    summary: dict[str, Any] = {
        "endpoints": {
            role: {"id": eid, "state": "available", "action": "created"} for role, eid in endpoints.items()
        },
        "registrations": {},
    }
    if dns is not None:
        summary["dns"] = dns
    store.update_observed(
        KEY,
        {
            "generation": 1,
            "health": "HEALTHY",
            "last_error": None,
            "last_run": {
                "execution": f"{KEY}-g1-20261121T200102Z",
                "outcome": "SUCCEEDED",
                "ended_at": "2026-11-21T20:03:00+00:00",
            },
            "resources": summary,
        },
    )
    store.add_run(
        KEY,
        RunRecord(
            execution_name=f"{KEY}-g1-20261121T200102Z",
            outcome="SUCCEEDED",
            generation=1,
            ended_at="2026-11-21T20:03:00+00:00",
        ),
    )


def _custom_dns(world: World) -> dict[str, Any]:
    """The seed's custom DNS as the branch leaves it (an outbound endpoint in the DNS VPC, a "." rule to the
    corporate servers, a SYSTEM rule for amazonaws.com, both associated with the data-plane VPC), made in
    moto; returns the DNS result the reconcile records."""
    env, ec2, r53r = world.env, world.client("ec2"), world.client("route53resolver")
    group = ec2.create_security_group(GroupName="resolver", Description="resolver", VpcId=env.dns_vpc_id)
    endpoint = r53r.create_resolver_endpoint(
        CreatorRequestId="status-outbound",
        Name="dbxpl-outbound",
        SecurityGroupIds=[group["GroupId"]],
        Direction="OUTBOUND",
        IpAddresses=[{"SubnetId": s} for s in env.dns_subnet_ids],
    )["ResolverEndpoint"]
    forward = r53r.create_resolver_rule(
        CreatorRequestId="status-forward",
        RuleType="FORWARD",
        DomainName=".",
        TargetIps=[{"Ip": ip, "Port": 53} for ip in env.corporate_dns_ips],
        ResolverEndpointId=endpoint["Id"],
    )["ResolverRule"]
    system = r53r.create_resolver_rule(
        CreatorRequestId="status-aws", RuleType="SYSTEM", DomainName="amazonaws.com"
    )["ResolverRule"]
    rules = [
        {
            "role": "forward-all",
            "resolver_rule_id": forward["Id"],
            "domain": ".",
            "rule_type": "FORWARD",
            "scope_vpc_id": env.dns_vpc_id,
            "resolver_endpoint_id": endpoint["Id"],
            "target_ips": list(env.corporate_dns_ips),
            "action": "created",
        },
        {
            "role": "aws-names",
            "resolver_rule_id": system["Id"],
            "domain": "amazonaws.com",
            "rule_type": "SYSTEM",
            "scope_vpc_id": env.dns_vpc_id,
            "action": "created",
        },
    ]
    associations = []
    for rule in rules:
        association = r53r.associate_resolver_rule(
            ResolverRuleId=rule["resolver_rule_id"], VPCId=env.vpc_id, Name=f"dbxpl-{rule['role']}"
        )
        associations.append(
            {
                "resolver_rule_association_id": association["ResolverRuleAssociation"]["Id"],
                "resolver_rule_id": rule["resolver_rule_id"],
                "vpc_id": env.vpc_id,
                "domain": rule["domain"],
                "status": "COMPLETE",
                "action": "created",
            }
        )
    return {
        "outbound_endpoint": {"resolver_endpoint_id": endpoint["Id"], "security_group_id": group["GroupId"]},
        "forward_rule_id": forward["Id"],
        "aws_rule_ids": [system["Id"]],
        "associations": associations,
        "resolver_endpoints": [
            {
                "role": "outbound",
                "resolver_endpoint_id": endpoint["Id"],
                "vpc_id": env.dns_vpc_id,
                "direction": "OUTBOUND",
                "status": "OPERATIONAL",
                "security_group_id": group["GroupId"],
                "action": "created",
            }
        ],
        "rules": rules,
        "verification": {
            "status": "verified",
            "resolver": "10.0.0.2",
            "names": [
                {
                    "name": "git.corp.example.internal",
                    "answers": ["10.10.0.80"],
                    "status": "NOERROR",
                    "ok": True,
                }
            ],
        },
    }


def test_healthy_when_the_last_run_succeeded_and_live_reads_agree(world: World) -> None:
    # Given a recorded successful run whose endpoint is live and available
    _record_success(world, {"sts": _endpoint(world, private_dns=True)})
    # When status is asked for
    code, out, _err = run_cli(["status", KEY, "--output", "json"], world.session)
    # Then it is HEALTHY, with the run, the generation and the live endpoint state
    assert code == 0
    status = json.loads(out)
    assert status["health"] == "HEALTHY"
    assert status["reasons"] == []
    assert status["generation"] == {"desired": 1, "applied": 1}
    assert status["last_run"]["outcome"] == "SUCCEEDED"
    assert status["runs"][0]["execution_name"] == f"{KEY}-g1-20261121T200102Z"
    (endpoint,) = status["resources"]
    assert endpoint["live_state"] == "available, private DNS on"
    assert "Databricks not checked live" in status["notes"][0]


def test_degraded_when_a_recorded_endpoint_is_gone(world: World) -> None:
    _record_success(world, {"sts": _endpoint(world, private_dns=True), "relay": "vpce-0d8e7f6a5b4c3d202"})
    code, out, _err = run_cli(["status", KEY], world.session)
    assert code == 1
    assert "Health: DEGRADED" in out
    assert "relay endpoint vpce-0d8e7f6a5b4c3d202 does not exist" in out
    assert "Recent runs" in out


def test_failed_shows_the_last_error(world: World) -> None:
    # Given a later run that failed
    _record_success(world, {"sts": _endpoint(world, private_dns=True)})
    cause = "Preflight found 1 problem(s); nothing was changed:\n- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 has enableDnsHostnames off"
    world.store.update_observed(
        KEY,
        {
            "health": "FAILED",
            "last_error": {
                "error": "PreflightFailedError",
                "cause": cause,
                "at": "2026-11-21T21:00:00+00:00",
            },
            "last_run": {
                "execution": f"{KEY}-g2-x",
                "outcome": "FAILED",
                "ended_at": "2026-11-21T21:00:00+00:00",
            },
        },
    )
    world.store.add_run(
        KEY,
        RunRecord(
            execution_name=f"{KEY}-g2-x",
            outcome="FAILED",
            generation=2,
            error="PreflightFailedError",
            cause=cause,
            ended_at="2026-11-21T21:00:00+00:00",
        ),
    )
    # When status is shown
    code, out, _err = run_cli(["status", KEY], world.session)
    # Then FAILED, with the error name and the whole cause, newest run first
    assert code == 1
    assert "Health: FAILED" in out
    assert "Last error: PreflightFailedError" in out
    assert "- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 has enableDnsHostnames off" in out
    runs = out.split("Recent runs")[1].splitlines()
    assert "FAILED" in runs[2] and "SUCCEEDED" in runs[3]


def test_an_unknown_workspace_is_an_error(world: World) -> None:
    code, out, err = run_cli(["status", "nobody", "--output", "json"], world.session)
    assert code == 1
    assert json.loads(out)["error"] == "WorkspaceNotFoundError"
    assert "apply its spec first" in err


def test_private_dns_off_on_a_databricks_endpoint_is_degraded(world: World) -> None:
    _record_success(world, {"workspace": _endpoint(world, private_dns=False)})
    code, out, _err = run_cli(["status", KEY], world.session)
    assert code == 1
    assert "has private DNS off" in out


def test_the_dns_resources_are_listed_with_their_live_state(world: World) -> None:
    # Given a recorded successful run with custom DNS, everything live as recorded
    dns = _custom_dns(world)
    _record_success(
        world, {"sts": _endpoint(world, private_dns=True)}, dns=dns, spec=_spec(world, custom_dns=True)
    )
    # When status is shown
    code, out, err = run_cli(["status", KEY], world.session)
    # Then it is HEALTHY and lists the Resolver endpoint, both rules, both associations and the verification
    assert code == 0, out + err
    assert "Health: HEALTHY" in out
    lines = out.splitlines()
    endpoint_id = dns["outbound_endpoint"]["resolver_endpoint_id"]
    assert any(
        "resolver endpoint" in line and endpoint_id in line and "OPERATIONAL, Do53" in line for line in lines
    )
    forward = next(line for line in lines if dns["forward_rule_id"] in line and "resolver rule" in line)
    assert "forward-all ." in forward and "10.10.0.53:53" in forward
    assert sum("rule association" in line and "COMPLETE" in line for line in lines) == 2
    assert "ok  git.corp.example.internal -> 10.10.0.80" in out


def test_a_disassociated_dot_rule_is_degraded_and_named(world: World) -> None:
    # Given a healthy custom DNS setup whose "." rule someone disassociated from the data-plane VPC
    dns = _custom_dns(world)
    _record_success(
        world, {"sts": _endpoint(world, private_dns=True)}, dns=dns, spec=_spec(world, custom_dns=True)
    )
    world.client("route53resolver").disassociate_resolver_rule(
        ResolverRuleId=dns["forward_rule_id"], VPCId=world.env.vpc_id
    )
    # When status is asked for
    code, out, _err = run_cli(["status", KEY, "--output", "json"], world.session)
    # Then it exits 1, DEGRADED, naming the rule, its domain and the VPC, and marks the association's row
    assert code == 1
    status = json.loads(out)
    assert status["health"] == "DEGRADED"
    assert status["reasons"] == [
        f"resolver rule {dns['forward_rule_id']} (.) is no longer associated with {world.env.vpc_id}"
    ]
    [row] = [r for r in status["resources"] if r["kind"] == "rule association" and r["problem"]]
    assert row["live_state"] == "not associated" and row["name"] == f". -> {world.env.vpc_id}"


def test_rule_targets_changed_by_hand_are_degraded(world: World) -> None:
    # Given a healthy custom DNS setup whose "." rule now forwards to another server
    dns = _custom_dns(world)
    _record_success(
        world, {"sts": _endpoint(world, private_dns=True)}, dns=dns, spec=_spec(world, custom_dns=True)
    )
    # (moto 5.2.5 has no UpdateResolverRule: the targets change in its backend, as the call would change them)
    backend = route53resolver_backends["123456789012"][REGION]
    backend.resolver_rules[dns["forward_rule_id"]].target_ips = [{"Ip": "203.0.113.53", "Port": 53}]
    # When status is asked for
    code, out, _err = run_cli(["status", KEY], world.session)
    # Then it names the rule and both the live and the wanted targets
    assert code == 1
    assert "Health: DEGRADED" in out
    assert (
        f"resolver rule {dns['forward_rule_id']} (.) forwards to 203.0.113.53:53, not 10.10.0.53:53, 10.10.0.54:53"
        in out
    )


def test_the_drift_scan_finds_what_status_names(world: World) -> None:
    # Given a custom DNS setup whose "." rule now forwards elsewhere and is disassociated from the VPC
    dns = _custom_dns(world)
    spec = _spec(world, custom_dns=True)
    _record_success(world, {"sts": _endpoint(world, private_dns=True)}, dns=dns, spec=spec)
    backend = route53resolver_backends["123456789012"][REGION]
    backend.resolver_rules[dns["forward_rule_id"]].target_ips = [{"Ip": "203.0.113.53", "Port": 53}]
    world.client("route53resolver").disassociate_resolver_rule(
        ResolverRuleId=dns["forward_rule_id"], VPCId=world.env.vpc_id
    )
    # When status reports and the drift scan's DNS check compares
    _code, out, _err = run_cli(["status", KEY, "--output", "json"], world.session)
    deps = Deps(settings=Settings(region=REGION, owner_tag="dbx-privatelink"), session=world.session)
    scan = check_dns(parse_spec(spec), {"dns": dns}, deps)
    # Then both name the same two findings
    assert json.loads(out)["reasons"] == scan and len(scan) == 2
