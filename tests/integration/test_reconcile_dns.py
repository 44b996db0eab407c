"""The custom DNS steps against moto's Route 53 Resolver and EC2: find-first, no duplicates on a re-run,
drift repair of rule targets, associations, and the RSLVR-00804 refusal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.route53resolver.models import route53resolver_backends

from dbx_privatelink.aws.dns_query import DnsAnswer
from dbx_privatelink.aws.resolver import ResolverClient, TokenBucket
from dbx_privatelink.errors import (
    AwsRequestError,
    AwsThrottledError,
    DnsNotAnsweredError,
    PreflightFailedError,
    QuotaExceededError,
    SharedResourceBusyError,
    SpecInvalidError,
)
from dbx_privatelink.models.base import PollState
from dbx_privatelink.models.dns_checks import CheckResolverEndpointsInput, CheckRuleAssociationsInput
from dbx_privatelink.models.dns_steps import EnsureResolverRulesInput, EnsureRuleAssociationsInput
from dbx_privatelink.models.spec_step import SpecStep
from dbx_privatelink.models.verify import VerifyDnsInput
from dbx_privatelink.reconcile.dns import (
    check_resolver_endpoints,
    check_rule_associations,
    dns_assessment,
    dns_problems,
    ensure_resolver_endpoints,
    ensure_resolver_rules,
    ensure_rule_associations,
    group_rules_held,
    resolver_quota_held,
)
from dbx_privatelink.reconcile.verify import VERIFY_ATTEMPTS, VERIFY_MARGIN_S, verify_dns
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.aws import resolver_patches
from tests.tables import app_table

REGION = "us-east-1"
OWNER = "dbx-privatelink-test"
MUTATING = (
    "CreateResolverEndpoint",
    "CreateResolverRule",
    "UpdateResolverRule",
    "UpdateResolverEndpoint",
    "AssociateResolverRule",
    "TagResource",
)


@dataclass
class World:
    session: Any
    deps: Deps
    data_plane_vpc: str
    dns_vpc: str
    dns_subnets: list[str]
    peered_vpc: str
    peered_subnets: list[str]
    calls: list[str]

    @property
    def r53r(self) -> Any:
        return self.session.client("route53resolver", region_name=REGION)

    def mutations(self) -> list[str]:
        return [c for c in self.calls if c in MUTATING]


def _vpc(ec2: Any, cidr: str) -> str:
    vpc: str = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    return vpc


def _subnets(ec2: Any, vpc: str, cidrs: list[str], zones: list[str]) -> list[str]:
    return [
        ec2.create_subnet(VpcId=vpc, CidrBlock=c, AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for c, z in zip(cidrs, zones, strict=True)
    ]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    # UpdateResolverRule, which moto lacks, as the local stack serves it. Installed for the process, never
    # undone: a test that patched it for itself and restored moto's absence at its end would take it from a
    # local stack that the same test worker brings up later.
    resolver_patches.install()
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        ec2 = session.client("ec2", region_name=REGION)
        data_plane = _vpc(ec2, "10.0.0.0/22")
        dns_vpc = _vpc(ec2, "10.10.0.0/24")
        peered = _vpc(ec2, "10.20.0.0/24")
        calls: list[str] = []
        session.events.register("before-call.route53resolver", lambda model, **kw: calls.append(model.name))
        yield World(
            session=session,
            deps=Deps(
                settings=Settings(region=REGION, owner_tag=OWNER, table_name=app_table(session)),
                session=session,
            ),
            data_plane_vpc=data_plane,
            dns_vpc=dns_vpc,
            dns_subnets=_subnets(ec2, dns_vpc, ["10.10.0.0/25", "10.10.0.128/25"], ["a", "b"]),
            peered_vpc=peered,
            peered_subnets=_subnets(ec2, peered, ["10.20.0.0/25", "10.20.0.128/25"], ["a", "b"]),
            calls=calls,
        )


def _spec(world: World, key: str = "dns-ws", **dns: Any) -> SpecStep:
    doc = {
        "workspace_key": key,
        "region": REGION,
        "databricks": {
            "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "credentials_id": "creds",
            "storage_configuration_id": "storage",
            "workspace": {"name": "dns-ws"},
        },
        "network": {
            "vpc_id": world.data_plane_vpc,
            "workspace_subnet_ids": ["subnet-0000000000000001", "subnet-0000000000000002"],
            "workspace_security_group_ids": ["sg-0000000000000001"],
            "endpoint_subnet_ids": ["subnet-0000000000000003"],
            "endpoint_security_group_id": "sg-0000000000000002",
        },
        "dns": dns
        or {
            "custom_dns": {
                "dns_vpc_id": world.dns_vpc,
                "resolver_subnet_ids": world.dns_subnets,
                "allowed_cidrs": ["10.0.0.0/22"],
                "corporate_dns_ips": ["10.10.0.53", "10.10.0.54"],
            }
        },
    }
    return SpecStep(spec=parse_spec(doc))


def _reconcile(world: World, step: SpecStep) -> Any:
    """The DNS branch as the state machine runs it: ensure, poll, rules, associations, poll."""
    endpoints = ensure_resolver_endpoints(step, world.deps)
    poll = check_resolver_endpoints(
        CheckResolverEndpointsInput(region=REGION, endpoints=endpoints, poll=PollState()), world.deps
    )
    assert poll.ready, poll.detail
    rules = ensure_resolver_rules(EnsureResolverRulesInput(spec=step.spec, endpoints=endpoints), world.deps)
    result = ensure_rule_associations(
        EnsureRuleAssociationsInput(spec=step.spec, endpoints=rules.endpoints, rules=rules.rules), world.deps
    )
    poll = check_rule_associations(
        CheckRuleAssociationsInput(region=REGION, associations=result.associations, poll=PollState()),
        world.deps,
    )
    assert poll.ready, poll.detail
    return result, rules


def test_custom_dns_creates_the_walkthroughs_resolver_setup(world: World) -> None:
    # Given a spec with custom DNS in the DNS VPC
    step = _spec(world)
    # When the DNS branch runs
    result, _ = _reconcile(world, step)
    # Then one outbound endpoint with an IP in each resolver subnet exists, tagged as ours
    [endpoint] = world.r53r.list_resolver_endpoints()["ResolverEndpoints"]
    assert endpoint["Direction"] == "OUTBOUND" and endpoint["HostVPCId"] == world.dns_vpc
    ips = world.r53r.list_resolver_endpoint_ip_addresses(ResolverEndpointId=endpoint["Id"])["IpAddresses"]
    assert sorted(a["SubnetId"] for a in ips) == sorted(world.dns_subnets)
    assert result.outbound_endpoint.resolver_endpoint_id == endpoint["Id"]
    assert sorted(result.outbound_endpoint.ips) == sorted(a["Ip"] for a in ips)
    # and its security group takes no DNS in (an outbound endpoint only sends) and lets DNS out to the
    # corporate servers only: its rules follow the servers, never the workspaces behind the DNS VPC
    [group] = world.session.client("ec2", region_name=REGION).describe_security_groups(
        GroupIds=endpoint["SecurityGroupIds"]
    )["SecurityGroups"]
    assert [r for p in group["IpPermissions"] for r in p["IpRanges"]] == []
    assert sorted(
        (p["IpProtocol"], p.get("FromPort"), r["CidrIp"])
        for p in group["IpPermissionsEgress"]
        for r in p["IpRanges"]
    ) == [
        ("tcp", 53, "10.10.0.53/32"),
        ("tcp", 53, "10.10.0.54/32"),
        ("udp", 53, "10.10.0.53/32"),
        ("udp", 53, "10.10.0.54/32"),
    ]
    # and the "." rule forwards to the corporate servers through it; amazonaws.com stays on Route 53
    forward = world.r53r.get_resolver_rule(ResolverRuleId=result.forward_rule_id)["ResolverRule"]
    assert forward["RuleType"] == "FORWARD" and forward["ResolverEndpointId"] == endpoint["Id"]
    assert sorted(t["Ip"] for t in forward["TargetIps"]) == ["10.10.0.53", "10.10.0.54"]
    [aws_rule_id] = result.aws_rule_ids
    aws_rule = world.r53r.get_resolver_rule(ResolverRuleId=aws_rule_id)["ResolverRule"]
    assert aws_rule["RuleType"] == "SYSTEM" and aws_rule["DomainName"].rstrip(".") == "amazonaws.com"
    # and both are associated with the data-plane VPC
    associated = world.r53r.list_resolver_rule_associations(
        Filters=[{"Name": "VPCId", "Values": [world.data_plane_vpc]}]
    )["ResolverRuleAssociations"]
    assert {a["ResolverRuleId"] for a in associated} == {result.forward_rule_id, aws_rule_id}
    assert {a.action for a in result.associations} == {"created"}
    tags = world.r53r.list_tags_for_resource(ResourceArn=forward["Arn"])["Tags"]
    assert {"Key": "dbx-privatelink:owner", "Value": OWNER} in tags


def test_a_second_run_finds_everything_and_makes_no_mutating_call(world: World) -> None:
    step = _spec(world)
    first, _ = _reconcile(world, step)
    world.calls.clear()
    # When the same spec runs again
    second, rules = _reconcile(world, step)
    # Then the same resources come back and no Resolver resource was created, changed or tagged
    assert world.mutations() == []
    with_actions = {"resolver_endpoints", "rules", "created"}
    assert second.model_dump(exclude=with_actions) == {
        **first.model_dump(exclude=with_actions),
        "associations": [{**a, "action": "found"} for a in first.model_dump()["associations"]],
    }
    assert first.created and not second.created
    assert {e.action for e in second.resolver_endpoints} == {"found"}
    assert {r.action for r in rules.rules} == {"found"}
    assert len(world.r53r.list_resolver_endpoints()["ResolverEndpoints"]) == 1
    assert len(world.r53r.list_resolver_rules()["ResolverRules"]) == 2


def test_an_endpoint_made_by_an_interrupted_run_is_adopted_not_duplicated(world: World) -> None:
    # Given a run that created the endpoint but died before tagging was seen (tags removed)
    step = _spec(world)
    endpoints = ensure_resolver_endpoints(step, world.deps)
    arn = world.r53r.get_resolver_endpoint(ResolverEndpointId=endpoints.outbound.resolver_endpoint_id)[
        "ResolverEndpoint"
    ]["Arn"]
    world.r53r.untag_resource(ResourceArn=arn, TagKeys=["dbx-privatelink:owner", "dbx-privatelink:role"])
    # When the step runs again
    again = ensure_resolver_endpoints(step, world.deps)
    # Then the endpoint is found by its CreatorRequestId and tagged, not created twice
    assert again.outbound.resolver_endpoint_id == endpoints.outbound.resolver_endpoint_id
    assert again.outbound.action == "adopted"
    assert len(world.r53r.list_resolver_endpoints()["ResolverEndpoints"]) == 1
    tags = world.r53r.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert {"Key": "dbx-privatelink:owner", "Value": OWNER} in tags


def test_drifted_forward_targets_are_updated_back(world: World) -> None:
    step = _spec(world)
    first, _ = _reconcile(world, step)
    # Given someone pointed the "." rule at another server
    backend = route53resolver_backends["123456789012"][REGION]
    backend.resolver_rules[first.forward_rule_id].target_ips = [{"Ip": "10.10.0.99", "Port": 53}]
    world.calls.clear()
    # When the rules step runs
    _, rules = _reconcile(world, step)
    # Then the same rule is updated to the corporate servers again, nothing else changes
    forward = next(r for r in rules.rules if r.role == "forward-all")
    assert forward.resolver_rule_id == first.forward_rule_id and forward.action == "updated"
    assert world.mutations() == ["UpdateResolverRule"]
    targets = world.r53r.get_resolver_rule(ResolverRuleId=first.forward_rule_id)["ResolverRule"]["TargetIps"]
    assert sorted(t["Ip"] for t in targets) == ["10.10.0.53", "10.10.0.54"]


def test_do53_dropped_from_an_endpoints_protocols_is_given_back_beside_doh(world: World) -> None:
    resolver_patches.install()  # the local stack's UpdateResolverEndpoint with Protocols (moto: name only)
    step = _spec(world)
    first, _ = _reconcile(world, step)
    endpoint_id = first.outbound_endpoint.resolver_endpoint_id
    # Given someone switched the outbound endpoint to DNS over HTTPS only
    world.r53r.update_resolver_endpoint(ResolverEndpointId=endpoint_id, Protocols=["DoH"])
    world.calls.clear()
    # When the DNS branch runs again
    _reconcile(world, step)
    # Then the same endpoint speaks Do53 again, DoH kept, and nothing else was written
    endpoint = world.r53r.get_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
    assert sorted(endpoint["Protocols"]) == ["Do53", "DoH"]
    assert world.mutations() == ["UpdateResolverEndpoint"]
    assert len(world.r53r.list_resolver_endpoints()["ResolverEndpoints"]) == 1


def test_the_local_update_resolver_endpoint_keeps_aws_rules(world: World) -> None:
    resolver_patches.install()
    step = _spec(world)
    first, _ = _reconcile(world, step)
    endpoint_id = first.outbound_endpoint.resolver_endpoint_id
    r53r = world.r53r
    # DoH-FIPS is for inbound endpoints only; IPV6 is not a type an endpoint can be updated to
    for bad in ({"Protocols": ["DoH-FIPS"]}, {"ResolverEndpointType": "IPV6"}):
        with pytest.raises(r53r.exceptions.ClientError) as refused:
            r53r.update_resolver_endpoint(ResolverEndpointId=endpoint_id, **bad)
        assert refused.value.response["Error"]["Code"] in (
            "InvalidParameterException",
            "InvalidRequestException",
        )
    r53r.update_resolver_endpoint(ResolverEndpointId=endpoint_id, ResolverEndpointType="DUALSTACK")
    endpoint = r53r.get_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
    assert endpoint["ResolverEndpointType"] == "DUALSTACK" and endpoint["Protocols"] == ["Do53"]
    # An inbound endpoint never goes straight from only Do53 to only DoH
    ec2 = world.session.client("ec2", region_name=REGION)
    group = ec2.create_security_group(GroupName="in", Description="dns", VpcId=world.peered_vpc)["GroupId"]
    inbound = r53r.create_resolver_endpoint(
        CreatorRequestId="inbound-1",
        Direction="INBOUND",
        SecurityGroupIds=[group],
        IpAddresses=[{"SubnetId": s} for s in world.peered_subnets],
    )["ResolverEndpoint"]["Id"]
    with pytest.raises(r53r.exceptions.ClientError, match="only Do53 to only DoH"):
        r53r.update_resolver_endpoint(ResolverEndpointId=inbound, Protocols=["DoH"])
    r53r.update_resolver_endpoint(ResolverEndpointId=inbound, Protocols=["Do53", "DoH"])
    r53r.update_resolver_endpoint(ResolverEndpointId=inbound, Protocols=["DoH"])
    assert r53r.get_resolver_endpoint(ResolverEndpointId=inbound)["ResolverEndpoint"]["Protocols"] == ["DoH"]


def test_aws_names_forwarded_to_the_dns_vpc_resolver_and_front_end_associated(world: World) -> None:
    ec2 = world.session.client("ec2", region_name=REGION)
    transit = _vpc(ec2, "10.30.0.0/24")
    step = _spec(
        world,
        custom_dns={
            "dns_vpc_id": world.dns_vpc,
            "resolver_subnet_ids": world.dns_subnets,
            "allowed_cidrs": ["10.0.0.0/22"],
            "corporate_dns_ips": ["10.10.0.53"],
            "aws_names": "forward-to-dns-vpc-resolver",
            "associate_vpc_ids": [transit],
        },
    )
    result, _ = _reconcile(world, step)
    [aws_rule_id] = result.aws_rule_ids
    rule = world.r53r.get_resolver_rule(ResolverRuleId=aws_rule_id)["ResolverRule"]
    # the seed's variant: FORWARD to the DNS VPC's CIDR base + 2
    assert rule["RuleType"] == "FORWARD" and [t["Ip"] for t in rule["TargetIps"]] == ["10.10.0.2"]
    pairs = {(a.resolver_rule_id, a.vpc_id) for a in result.associations}
    for rule_id in (result.forward_rule_id, aws_rule_id):
        assert {(rule_id, world.data_plane_vpc), (rule_id, transit)} <= pairs


def test_inbound_pattern_forwards_from_the_peered_vpc_only(world: World) -> None:
    # Given the inbound pattern: names of the data-plane VPC resolvable from the peered VPC
    ec2 = world.session.client("ec2", region_name=REGION)
    inbound_subnets = _subnets(ec2, world.data_plane_vpc, ["10.0.1.0/24", "10.0.2.0/24"], ["a", "b"])
    step = _spec(
        world,
        inbound={
            "vpc_id": world.data_plane_vpc,
            "subnet_ids": inbound_subnets,
            "allowed_cidrs": ["10.20.0.0/24"],
            "domains": ["privatelink.cloud.databricks.com"],
            "peered_vpcs": [{"vpc_id": world.peered_vpc, "subnet_ids": world.peered_subnets}],
        },
    )
    result, _ = _reconcile(world, step)
    # Then the rule in the peered VPC targets the inbound endpoint's live IPs via the peered outbound endpoint
    [peer] = result.peered
    [rule_id] = peer.rule_ids
    rule = world.r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
    assert rule["ResolverEndpointId"] == peer.resolver_endpoint_id
    assert (
        sorted(t["Ip"] for t in rule["TargetIps"]) == sorted(result.inbound.ips)
        and len(result.inbound.ips) == 2
    )
    assert [(a.resolver_rule_id, a.vpc_id) for a in result.associations] == [(rule_id, world.peered_vpc)]
    assert result.inbound.domains == ["privatelink.cloud.databricks.com"]
    assert result.outbound_endpoint is None and result.forward_rule_id is None


def test_a_rule_targeting_an_inbound_endpoint_is_never_associated_with_its_vpc(world: World) -> None:
    # Given an inbound endpoint in the data-plane VPC, and "corporate servers" that are its own IPs
    ec2 = world.session.client("ec2", region_name=REGION)
    subnets = _subnets(ec2, world.data_plane_vpc, ["10.0.1.0/24", "10.0.2.0/24"], ["a", "b"])
    group = ec2.create_security_group(GroupName="in", Description="in", VpcId=world.data_plane_vpc)["GroupId"]
    inbound = world.r53r.create_resolver_endpoint(
        CreatorRequestId="someone-else",
        Name="inbound",
        SecurityGroupIds=[group],
        Direction="INBOUND",
        IpAddresses=[{"SubnetId": s} for s in subnets],
    )["ResolverEndpoint"]
    ips = [
        a["Ip"]
        for a in world.r53r.list_resolver_endpoint_ip_addresses(ResolverEndpointId=inbound["Id"])[
            "IpAddresses"
        ]
    ]
    step = _spec(
        world,
        custom_dns={
            "dns_vpc_id": world.dns_vpc,
            "resolver_subnet_ids": world.dns_subnets,
            "allowed_cidrs": ["10.0.0.0/22"],
            "corporate_dns_ips": ips,
        },
    )
    endpoints = ensure_resolver_endpoints(step, world.deps)
    rules = ensure_resolver_rules(EnsureResolverRulesInput(spec=step.spec, endpoints=endpoints), world.deps)
    world.calls.clear()
    # When the associations step runs, then it refuses with RSLVR-00804 before associating anything
    with pytest.raises(SpecInvalidError, match="RSLVR-00804"):
        ensure_rule_associations(
            EnsureRuleAssociationsInput(spec=step.spec, endpoints=rules.endpoints, rules=rules.rules),
            world.deps,
        )
    assert "AssociateResolverRule" not in world.calls


def test_the_adapter_turns_aws_refusals_into_named_errors() -> None:
    client = boto3.client(
        "route53resolver", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    adapter = ResolverClient(client, None, limiter=TokenBucket(100, 100))
    with Stubber(client) as stub:
        stub.add_client_error(
            "associate_resolver_rule",
            "InvalidRequestException",
            "[RSLVR-00804] Cannot associate a rule that forwards to an inbound endpoint with the endpoint's VPC",
        )
        with pytest.raises(AwsRequestError, match=r"RSLVR-00804.*peered VPCs only"):
            adapter.associate("rslvr-rr-1", "vpc-0123456789abcdef0", "x")
        stub.add_client_error(
            "create_resolver_rule", "LimitExceededException", "Account has exceeded max-rules"
        )
        with pytest.raises(QuotaExceededError, match="rules per AWS Region"):
            adapter.create_rule(
                name="x",
                creator_request_id="x",
                rule_type="SYSTEM",
                domain="amazonaws.com",
                target_ips=[],
                resolver_endpoint_id=None,
                tags={},
            )
        stub.add_client_error("list_resolver_rules", "ThrottlingException", "Rate exceeded")
        with pytest.raises(AwsThrottledError):
            adapter.list_rules()


def test_endpoints_in_one_zone_are_refused_before_any_change(world: World) -> None:
    ec2 = world.session.client("ec2", region_name=REGION)
    other_dns_vpc = _vpc(ec2, "10.40.0.0/24")
    same_zone = _subnets(ec2, other_dns_vpc, ["10.40.0.0/25", "10.40.0.128/25"], ["a", "a"])
    step = _spec(
        world,
        custom_dns={
            "dns_vpc_id": other_dns_vpc,
            "resolver_subnet_ids": same_zone,
            "allowed_cidrs": ["10.0.0.0/22"],
            "corporate_dns_ips": ["10.10.0.53"],
        },
    )
    with pytest.raises(PreflightFailedError, match="both in us-east-1a"):
        ensure_resolver_endpoints(step, world.deps)
    assert world.mutations() == [] and not world.r53r.list_resolver_endpoints()["ResolverEndpoints"]


def test_the_rate_limiter_spaces_calls_and_bounds_the_wait() -> None:
    now = [0.0]
    slept: list[float] = []
    # Callers that reserved a token but are still asleep: the clock does not move while they wait.
    bucket = TokenBucket(5, 5, clock=lambda: now[0], sleep=slept.append)
    waits = [bucket.acquire() for _ in range(10)]
    # The burst of 5 passes at once, then each further caller waits 0.2 s more than the one before.
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # A caller that would have to wait longer than its bound gets a retryable error at once.
    with pytest.raises(AwsThrottledError, match="rate limit"):
        bucket.acquire(max_wait_s=0.5)
    # Once the clock has moved past the debt, calls pass without waiting again.
    now[0] += 2.2
    assert bucket.acquire(max_wait_s=0.5) == 0.0


class _NoDnsQueries:
    """A DNS query client that must not be used: verification skipped sends nothing."""

    def redirected(self) -> bool:
        return False

    def resolve(self, server: str, name: str, port: int = 53) -> Any:
        raise AssertionError(f"queried {server} for {name}")


def test_verification_is_skipped_with_the_reason_when_the_resolver_is_out_of_reach(world: World) -> None:
    step = _spec(world, verify=[{"name": "git.corp.example.internal"}])
    inp = VerifyDnsInput(spec=step.spec, private_dns_name="nvirginia.privatelink.cloud.databricks.com")
    # Given VerifyDns deployed without VerifierSubnetIds
    world.deps.__dict__["dns_query"] = _NoDnsQueries()
    # When it runs, then it reports the verification skipped and why, without a query
    result = verify_dns(inp, world.deps)
    assert result.status == "skipped" and "VerifierSubnetIds" in result.reason
    # Given VerifyDns in subnets of another VPC (the DNS VPC), then the reason names both VPCs
    in_dns_vpc = Deps(
        settings=Settings(region=REGION, owner_tag=OWNER, verifier_subnet_ids=",".join(world.dns_subnets)),
        session=world.session,
    )
    in_dns_vpc.__dict__["dns_query"] = _NoDnsQueries()
    result = verify_dns(inp, in_dns_vpc)
    assert result.status == "skipped"
    assert world.dns_vpc in result.reason and world.data_plane_vpc in result.reason


def test_preflight_names_the_resolver_endpoint_quota_before_any_change(world: World) -> None:
    # Given a region that has its four Route 53 Resolver endpoints (none of them this spec's)
    _others(world, 4)
    # When a spec needs a new outbound endpoint in the DNS VPC, then preflight names the quota, the
    # numbers and the fix, and makes no mutating call
    problems = dns_problems(_spec(world).spec, world.deps)
    assert any("endpoints per AWS Region" in p and "has 4" in p and "Service Quotas" in p for p in problems)
    assert world.mutations() == []


def test_preflight_names_the_rules_quota_of_a_shared_inbound_group(world: World) -> None:
    inbound = {
        "vpc_id": world.peered_vpc,
        "subnet_ids": world.peered_subnets,
        "allowed_cidrs": ["10.0.0.0/22"],
        "domains": ["acme.cloud.databricks.com"],
    }
    step = _spec(world, inbound=inbound)
    ensure_resolver_endpoints(step, world.deps)
    assert dns_problems(step.spec, world.deps) == []
    # Given the shared inbound group already admits 30 workspaces' networks (60 rules: TCP and UDP each)
    [group] = world.session.client("ec2", region_name=REGION).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["dbx-privatelink-resolver-inbound-*"]}]
    )["SecurityGroups"]
    others = [f"172.16.{n * 2}.0/24" for n in range(29)]  # not adjacent: they cannot be merged
    world.session.client("ec2", region_name=REGION).authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {"IpProtocol": p, "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": c} for c in others]}
            for p in ("tcp", "udp")
        ],
    )
    # When a 31st workspace's spec brings one more network, then preflight names the quota (62 > 60)
    more = _spec(world, inbound={**inbound, "allowed_cidrs": ["192.168.0.0/24"]})
    [problem] = dns_problems(more.spec, world.deps)
    assert "would hold 62 rules" in problem and "quota" in problem and "60" in problem
    # and networks adjacent to one already there merge into one rule instead
    merged = _spec(world, inbound={**inbound, "allowed_cidrs": ["10.0.0.0/23", "10.0.2.0/23"]})
    assert dns_problems(merged.spec, world.deps) == []


# --- the rules quota of a shared inbound group across a fleet: the networks of runs in progress count (their
# desired specs name them before any step adds a rule), and preflight counts again and reserves under the
# group's lock, so that two runs that each fit the quota alone cannot together exceed it.


def _inbound_group(world: World, taken: int) -> dict[str, Any]:
    """The shared inbound group as a first workspace made it (its network: 2 rules, TCP and UDP 53), with
    `taken` more networks of other workspaces in it (2 rules each); returns the dns.inbound section."""
    inbound = {
        "vpc_id": world.peered_vpc,
        "subnet_ids": world.peered_subnets,
        "allowed_cidrs": ["10.0.0.0/22"],
        "domains": ["acme.cloud.databricks.com"],
    }
    ensure_resolver_endpoints(_spec(world, inbound=inbound), world.deps)
    ec2 = world.session.client("ec2", region_name=REGION)
    [group] = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["dbx-privatelink-resolver-inbound-*"]}]
    )["SecurityGroups"]
    others = [f"172.16.{n * 2}.0/24" for n in range(taken)]  # not adjacent: they cannot be merged
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {"IpProtocol": p, "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": c} for c in others]}
            for p in ("tcp", "udp")
        ],
    )
    world.calls.clear()
    return inbound


def _reserve_rules(world: World, workspace: str, inbound: dict[str, Any]) -> None:
    """What another workspace's preflight leaves when its networks are new to the shared inbound group: its
    desired spec and its reference to the group, before any of its steps adds a rule."""
    world.deps.store.put_desired(_spec(world, key=workspace, inbound=inbound).spec)
    world.deps.ledger.refer(workspace, [SharedKey("resolver-security-group", f"{world.peered_vpc}|inbound")])


def test_rules_reserved_by_runs_in_progress_count_against_a_shared_groups_quota(world: World) -> None:
    # Given the shared inbound group holding 58 rules, and another workspace's run that reserved one more
    # network (2 rules) and has not added it yet
    inbound = _inbound_group(world, taken=28)
    _reserve_rules(world, "other-ws", {**inbound, "allowed_cidrs": ["192.168.1.0/24"]})
    # When a spec brings one more network of its own, then preflight refuses it before any change, and names
    # what runs in progress reserved, and for whom
    more = _spec(world, key="new-ws", inbound={**inbound, "allowed_cidrs": ["192.168.0.0/24"]})
    [problem] = dns_assessment(more.spec, world.deps).problems
    assert "would hold 62 rules, 2 of them reserved by the runs in progress of other-ws" in problem
    assert "'inbound rules per security group' is 60" in problem and world.mutations() == []
    # and a network that reservation brings already adds nothing: the spec fits, and takes no lock
    same = _spec(world, key="new-ws", inbound={**inbound, "allowed_cidrs": ["192.168.1.0/24"]})
    found = dns_assessment(same.spec, world.deps)
    assert found.problems == [] and found.inbound_group is None
    # and a workspace whose stored spec this version refuses is counted by what the group holds, and stops
    # no one's preflight
    _reserve_rules(world, "stale-ws", inbound)
    desired = world.deps.store._t.get_item(Key={"pk": "WS#stale-ws", "sk": "DESIRED"})["Item"]
    spec = json.loads(desired["spec"])
    spec["dns"]["inbound"]["allowed_cidrs"] = ["not a network"]
    world.deps.store._t.put_item(Item={**desired, "spec": json.dumps(spec)})
    assert dns_assessment(same.spec, world.deps).problems == []
    # and a spec whose networks the group holds already (a re-apply) is not refused for what others reserved,
    # even past the quota
    _reserve_rules(world, "third-ws", {**inbound, "allowed_cidrs": ["192.168.2.0/24"]})
    found = dns_assessment(_spec(world, inbound=inbound).spec, world.deps)
    assert found.problems == [] and found.inbound_group is None


def test_a_run_that_reserved_rules_first_wins_and_the_other_is_refused_before_it_writes(world: World) -> None:
    # Given room for one more network in the shared group, and a spec that brings one: its checks pass
    inbound = _inbound_group(world, taken=28)
    step = _spec(world, key="new-ws", inbound={**inbound, "allowed_cidrs": ["192.168.0.0/24"]})
    found = dns_assessment(step.spec, world.deps)
    assert found.problems == [] and found.inbound_group is not None
    # When another run reserves that room before this run's preflight writes anything, then this run is
    # refused under the group's lock; once that workspace no longer uses the group, it reserves
    group = SharedKey("resolver-security-group", f"{world.peered_vpc}|inbound")
    _first_reservation_wins(
        world,
        held=lambda: group_rules_held(step.spec, world.deps, "run-a", found.inbound_group),
        reserve=lambda: _reserve_rules(world, "other-ws", {**inbound, "allowed_cidrs": ["192.168.1.0/24"]}),
        release=lambda: world.deps.ledger.release("other-ws", [group]),
        lock=f"security-group-rules#{world.peered_vpc}|inbound",
    )


def _first_reservation_wins(
    world: World,
    *,
    held: Callable[[], AbstractContextManager[None]],
    reserve: Callable[[], Any],
    release: Callable[[], Any],
    lock: str,
) -> None:
    """Another run reserves (`reserve`) before this run's preflight writes: this run, counting again under
    the lock (`held`), is refused and writes nothing; once the other lets go (`release`), this run holds the
    lock while it writes, and gives it back."""
    reserve()
    wrote: list[str] = []
    with pytest.raises(PreflightFailedError) as raised, held():
        wrote.append("desired state and references")
    assert wrote == []
    assert "nothing was changed" in str(raised.value) and "other-ws" in str(raised.value)
    release()
    with held():
        wrote.append("desired state and references")
        with pytest.raises(SharedResourceBusyError):
            _fast(world).ledger.quota_lock(lock, "run-b", world.deps.clock, _fast(world).pause).__enter__()
    assert wrote == ["desired state and references"]
    with _fast(world).ledger.quota_lock(lock, "run-b", world.deps.clock, _fast(world).pause):
        pass


class _SlowDnsQueries:
    """A resolver that does not answer in time: each name's tries spend `cost_s` of the invocation."""

    timeout_s = 2.0

    def __init__(self, remaining_s: float, cost_s: float) -> None:
        self.remaining_s, self.cost_s = remaining_s, cost_s
        self.asked: list[str] = []

    def redirected(self) -> bool:
        return True

    def remaining(self) -> float:
        return self.remaining_s

    def resolve(self, server: str, name: str, port: int = 53, *, attempts: int = 1) -> DnsAnswer:
        self.asked.append(name)
        self.remaining_s -= self.cost_s
        return DnsAnswer(name, server, "TIMEOUT", detail=f"no answer within {self.timeout_s:g}s")


def test_names_left_when_the_invocations_time_runs_out_are_not_asked_and_asked_again_later(
    world: World,
) -> None:
    # Given a verification of three names, and an invocation with time for one name's tries only
    names = ["git.corp.example.internal", "wiki.corp.example.internal", "ci.corp.example.internal"]
    step = _spec(world, verify=[{"name": n} for n in names])
    inp = VerifyDnsInput(spec=step.spec, private_dns_name="nvirginia.privatelink.cloud.databricks.com")
    per_name = VERIFY_ATTEMPTS * _SlowDnsQueries.timeout_s
    slow = _SlowDnsQueries(remaining_s=per_name + VERIFY_MARGIN_S + 1.0, cost_s=per_name)
    world.deps.__dict__.update(dns_query=slow, remaining_time_s=slow.remaining)
    # When it runs
    with pytest.raises(DnsNotAnsweredError) as raised:
        verify_dns(inp, world.deps)
    # Then only the first name was asked before the Lambda's timeout came near; the others are named as not
    # asked, in an error the state machine retries (never a timed-out invocation)
    assert len(slow.asked) == 1
    message = str(raised.value)
    assert f"{slow.asked[0]} resolved to TIMEOUT" in message
    assert sorted(n for n in names if f"{n} was not asked" in message) == sorted(set(names) - set(slow.asked))


# --- the region's Resolver endpoint quota across a fleet: what runs in progress reserved counts, and
# preflight counts again and reserves under the quota's lock, so that two runs that each fit the quota alone
# cannot together exceed it (the second is refused before any change, with the reservations named).

QUOTA = f"route53resolver-endpoints#{REGION}"


def _others(world: World, count: int) -> None:
    """`count` Resolver endpoints of someone else in the region (the peered VPC)."""
    ec2: Any = world.session.client("ec2", region_name=REGION)
    group = ec2.create_security_group(VpcId=world.peered_vpc, GroupName="other", Description="other")[
        "GroupId"
    ]
    for n in range(count):
        world.r53r.create_resolver_endpoint(
            CreatorRequestId=f"other-{n}",
            Name=f"other-{n}",
            Direction="OUTBOUND",
            SecurityGroupIds=[group],
            IpAddresses=[{"SubnetId": s} for s in world.peered_subnets],
        )
    world.calls.clear()


def _reserve(world: World, workspace: str, vpc_id: str) -> None:
    """What another workspace's preflight leaves: a reference to an outbound endpoint not made yet."""
    world.deps.ledger.refer(workspace, [SharedKey("resolver-endpoint", f"{vpc_id}|outbound")])


def test_endpoints_reserved_by_runs_in_progress_count_against_the_quota(world: World) -> None:
    # Given 3 endpoints in the region (the quota is 4) and another workspace's run that reserved one more
    _others(world, 3)
    _reserve(world, "other-ws", world.peered_vpc)
    # When a spec needs a new outbound endpoint in its DNS VPC, then preflight refuses it before any change
    # and names what runs in progress reserved, and for whom
    found = dns_assessment(_spec(world).spec, world.deps)
    [problem] = found.problems
    assert "has 3 and this stack's workspaces hold 1 more not made yet" in problem and "other-ws" in problem
    assert "endpoints per AWS Region' is 4" in problem and world.mutations() == []


def test_an_endpoint_reserved_for_the_same_dns_vpc_is_counted_once(world: World) -> None:
    # Given 3 endpoints and a workspace behind the same DNS VPC whose run reserved its outbound endpoint
    _others(world, 3)
    _reserve(world, "neighbour-ws", world.dns_vpc)
    # When this spec needs that same endpoint, then it fits: the endpoint is one, shared; and its run adds
    # nothing to the count, so it takes no lock to reserve it
    found = dns_assessment(_spec(world).spec, world.deps)
    assert found.problems == [] and found.listing is None


def test_a_run_that_reserved_first_wins_and_the_other_is_refused_before_it_writes(world: World) -> None:
    # Given room for one more endpoint, and a spec that needs one: its checks pass
    _others(world, 3)
    step = _spec(world)
    found = dns_assessment(step.spec, world.deps)
    assert found.problems == [] and found.listing is not None
    # When another run reserves the last one before this run's preflight writes anything, then this run is
    # refused under the quota's lock; with no other reservation, it reserves
    endpoint = SharedKey("resolver-endpoint", f"{world.peered_vpc}|outbound")
    _first_reservation_wins(
        world,
        held=lambda: resolver_quota_held(step.spec, world.deps, "run-a", found.listing),
        reserve=lambda: _reserve(world, "other-ws", world.peered_vpc),
        release=lambda: world.deps.ledger.release("other-ws", [endpoint]),
        lock=QUOTA,
    )


def test_a_quota_lock_held_by_another_run_is_waited_for_a_while_then_retried(world: World) -> None:
    # Given another run counting the quota
    _others(world, 1)
    step = _spec(world)
    listing = dns_assessment(step.spec, world.deps).listing
    deps = _fast(world)
    pauses: list[float] = []
    deps.pause = pauses.append  # type: ignore[method-assign]
    ran: list[str] = []
    # When this run's preflight would reserve, then it waits a bounded while and leaves it to the state
    # machine's retry, naming the holder, without running its writes
    with (
        deps.ledger.quota_lock(QUOTA, "run-b", deps.clock, deps.pause),
        pytest.raises(SharedResourceBusyError) as raised,
        resolver_quota_held(step.spec, deps, "run-a", listing),
    ):
        ran.append("writes")
    assert "run-b" in str(raised.value) and ran == [] and len(pauses) == 60 / 0.25 - 1
    # and once it is given back, the run reserves at once
    with resolver_quota_held(step.spec, deps, "run-a", listing):
        ran.append("writes")
    assert ran == ["writes"]


def test_a_spec_that_adds_no_endpoint_takes_no_lock(world: World) -> None:
    step = _spec(world)
    with (
        world.deps.ledger.quota_lock(QUOTA, "run-b", world.deps.clock, world.deps.pause),
        resolver_quota_held(step.spec, world.deps, "run-a", None),
    ):
        pass


def _fast(world: World) -> Deps:
    """The world's adapters with pauses of a thousandth of a second."""
    return Deps(settings=world.deps.settings._replace(time_scale=0.001), session=world.session)
