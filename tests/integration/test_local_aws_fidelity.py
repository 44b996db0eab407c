"""The emulated AWS answers boto3 as AWS does where moto does not: the "." rule's spelling, the auto-defined
Internet Resolver rule, Resolver endpoints and rule associations passing through CREATING and DELETING,
endpoint addresses inside their subnets, gateway endpoints without private DNS, target ports defaulting
to 53."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from integration.local_servers import operator_client

from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
SCALE = TimeScale(0.01)
# Transitions of one to two wall seconds: long enough that the reads right after a call see the first
# status on a loaded machine, short enough for a test.
SETTINGS = LocalAwsSettings(
    resolver_endpoint_operational_after=200,
    resolver_endpoint_deleted_after=100,
    rule_association_complete_after=100,
    rule_association_deleted_after=100,
    cloudtrail_delay=3600,
)
WAIT_S = 30.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(SETTINGS, time_scale=SCALE) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> None:
    aws.reset()


@pytest.fixture
def ec2(aws: LocalAws) -> Any:
    return operator_client(aws, "ec2", REGION)


@pytest.fixture
def r53r(aws: LocalAws) -> Any:
    return operator_client(aws, "route53resolver", REGION)


@pytest.fixture
def network(ec2: Any) -> dict[str, Any]:
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="dns", Description="dns", VpcId=vpc)["GroupId"]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    return {
        "vpc": vpc,
        "subnets": [s["SubnetId"] for s in subnets],
        "cidrs": {s["SubnetId"]: s["CidrBlock"] for s in subnets},
        "group": group,
        "route_table": route_table,
    }


def _eventually(check: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _outbound(r53r: Any, network: dict[str, Any], token: str = "out-1") -> dict[str, Any]:
    return dict(
        r53r.create_resolver_endpoint(
            CreatorRequestId=token,
            Name=token,
            Direction="OUTBOUND",
            SecurityGroupIds=[network["group"]],
            IpAddresses=[{"SubnetId": s} for s in network["subnets"]],
        )["ResolverEndpoint"]
    )


def _forward_rule(r53r: Any, endpoint_id: str, domain: str, token: str, **target: Any) -> dict[str, Any]:
    return dict(
        r53r.create_resolver_rule(
            CreatorRequestId=token,
            Name=token,
            RuleType="FORWARD",
            DomainName=domain,
            TargetIps=[{"Ip": "10.99.0.10", **target}],
            ResolverEndpointId=endpoint_id,
        )["ResolverRule"]
    )


def _endpoint_status(r53r: Any, endpoint_id: str) -> str:
    try:
        return str(r53r.get_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]["Status"])
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def _association_status(r53r: Any, association_id: str) -> str:
    try:
        return str(
            r53r.get_resolver_rule_association(ResolverRuleAssociationId=association_id)[
                "ResolverRuleAssociation"
            ]["Status"]
        )
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def _reserved(cidr: str) -> set[str]:
    """The five addresses AWS reserves in every subnet: the first four and the last."""
    net = ipaddress.ip_network(cidr)
    return {str(net.network_address + i) for i in range(4)} | {str(net.broadcast_address)}


def test_a_root_rule_reads_back_as_a_dot_and_a_dot_filter_finds_it(
    r53r: Any, network: dict[str, Any]
) -> None:
    # Given an outbound endpoint
    endpoint = _outbound(r53r, network)
    # When rules for ".", "example.com" and "corp.example." are created
    root = _forward_rule(r53r, endpoint["Id"], ".", "root")
    plain = _forward_rule(r53r, endpoint["Id"], "example.com", "plain")
    dotted = _forward_rule(r53r, endpoint["Id"], "corp.example.", "dotted")
    # Then each reads back with one trailing dot, the root as "."
    assert (root["DomainName"], plain["DomainName"], dotted["DomainName"]) == (
        ".",
        "example.com.",
        "corp.example.",
    )
    assert r53r.get_resolver_rule(ResolverRuleId=root["Id"])["ResolverRule"]["DomainName"] == "."
    # And a DomainName filter of "." finds the "." rules: ours and the auto-defined one
    found = r53r.list_resolver_rules(Filters=[{"Name": "DomainName", "Values": ["."]}])["ResolverRules"]
    assert sorted(r["Id"] for r in found) == sorted([root["Id"], "rslvr-autodefined-rr-internet-resolver"])


def test_the_auto_defined_internet_resolver_rule_is_listed_as_aws_lists_it(r53r: Any) -> None:
    # Given a fresh account, when its rules are listed
    rules = r53r.list_resolver_rules()["ResolverRules"]
    # Then the auto-defined Internet Resolver rule is there, owned by Route 53 Resolver
    assert rules == [
        {
            "Id": "rslvr-autodefined-rr-internet-resolver",
            "CreatorRequestId": "",
            "Arn": f"arn:aws:route53resolver:{REGION}::autodefined-rule/rslvr-autodefined-rr-internet-resolver",
            "DomainName": ".",
            "Status": "COMPLETE",
            "RuleType": "RECURSIVE",
            "Name": "Internet Resolver",
            "OwnerId": "Route 53 Resolver",
            "ShareStatus": "NOT_SHARED",
        }
    ]
    assert r53r.get_resolver_rule(ResolverRuleId=rules[0]["Id"])["ResolverRule"] == rules[0]
    # And it cannot be deleted
    with pytest.raises(ClientError) as refused:
        r53r.delete_resolver_rule(ResolverRuleId=rules[0]["Id"])
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert [r["Id"] for r in r53r.list_resolver_rules()["ResolverRules"]] == [rules[0]["Id"]]


def test_a_resolver_endpoint_is_creating_then_operational_and_deleting_then_gone(
    r53r: Any, network: dict[str, Any]
) -> None:
    # When an endpoint is created, it is CREATING first
    endpoint = _outbound(r53r, network)
    assert endpoint["Status"] == "CREATING"
    assert _endpoint_status(r53r, endpoint["Id"]) == "CREATING"
    # Then OPERATIONAL, by itself
    assert _eventually(lambda: _endpoint_status(r53r, endpoint["Id"]) == "OPERATIONAL")
    # When it is deleted, it is DELETING, still listed
    deleted = r53r.delete_resolver_endpoint(ResolverEndpointId=endpoint["Id"])["ResolverEndpoint"]
    assert deleted["Status"] == "DELETING"
    listed = r53r.list_resolver_endpoints()["ResolverEndpoints"]
    assert [(e["Id"], e["Status"]) for e in listed] == [(endpoint["Id"], "DELETING")]
    # Then gone
    assert _eventually(lambda: _endpoint_status(r53r, endpoint["Id"]) == "ResourceNotFoundException")
    assert r53r.list_resolver_endpoints()["ResolverEndpoints"] == []


def test_a_rule_association_is_creating_then_complete_and_deleting_then_gone(
    r53r: Any, network: dict[str, Any]
) -> None:
    # Given a rule
    endpoint = _outbound(r53r, network)
    rule = _forward_rule(r53r, endpoint["Id"], "corp.example", "corp")
    # When it is associated with a VPC, the association is CREATING first
    association = r53r.associate_resolver_rule(ResolverRuleId=rule["Id"], VPCId=network["vpc"], Name="a")[
        "ResolverRuleAssociation"
    ]
    assert association["Status"] == "CREATING"
    assert _association_status(r53r, association["Id"]) == "CREATING"
    # Then COMPLETE, by itself
    assert _eventually(lambda: _association_status(r53r, association["Id"]) == "COMPLETE")
    # When it is disassociated, it is DELETING, and the rule cannot be deleted yet
    gone = r53r.disassociate_resolver_rule(ResolverRuleId=rule["Id"], VPCId=network["vpc"])
    assert gone["ResolverRuleAssociation"]["Status"] == "DELETING"
    assert _association_status(r53r, association["Id"]) == "DELETING"
    with pytest.raises(ClientError) as busy:
        r53r.delete_resolver_rule(ResolverRuleId=rule["Id"])
    assert busy.value.response["Error"]["Code"] == "ResourceInUseException"
    # Then gone, and the rule can be deleted
    assert _eventually(lambda: _association_status(r53r, association["Id"]) == "ResourceNotFoundException")
    r53r.delete_resolver_rule(ResolverRuleId=rule["Id"])


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call()
    return dict(refused.value.response["Error"])


def _endpoints_in(r53r: Any, network: dict[str, Any], count: int, first: int = 0) -> list[str]:
    return [_outbound(r53r, network, f"quota-{n}")["Id"] for n in range(first, first + count)]


def test_the_resolver_endpoint_quota_counts_every_endpoint_until_it_is_gone(
    aws: LocalAws, r53r: Any, network: dict[str, Any]
) -> None:
    # Given the account's quota of 4 endpoints in the region (AWS's default), all taken
    made = _endpoints_in(r53r, network, 4)
    # When a 5th is created, then it is refused and nothing is made (moto alone refuses only the 6th)
    refused = _error(lambda: _outbound(r53r, network, "quota-4"))
    assert refused["Code"] == "LimitExceededException" and "max-endpoints" in refused["Message"]
    assert len(r53r.list_resolver_endpoints()["ResolverEndpoints"]) == 4
    # And a deleted endpoint counts until it is gone
    r53r.delete_resolver_endpoint(ResolverEndpointId=made[0])
    assert _endpoint_status(r53r, made[0]) == "DELETING"
    assert _error(lambda: _outbound(r53r, network, "quota-5"))["Code"] == "LimitExceededException"
    assert _eventually(lambda: _endpoint_status(r53r, made[0]) == "ResourceNotFoundException")
    _outbound(r53r, network, "quota-6")


def test_a_raised_resolver_endpoint_quota_lets_more_in_than_moto_does(
    aws: LocalAws, r53r: Any, network: dict[str, Any]
) -> None:
    # Given an account whose quota was raised to 7 (the stack's ResolverEndpointsQuota says so)
    aws.resolver.settings = replace(SETTINGS, resolver_endpoints_per_region=7)
    try:
        # When 7 endpoints are created, then all are made, and the 8th is refused
        assert len(_endpoints_in(r53r, network, 7)) == 7
        assert _error(lambda: _outbound(r53r, network, "quota-7"))["Code"] == "LimitExceededException"
    finally:
        aws.resolver.settings = SETTINGS


def test_endpoint_addresses_are_inside_their_subnets(ec2: Any, r53r: Any, network: dict[str, Any]) -> None:
    # When a Resolver endpoint and an interface endpoint are made in the same two subnets
    resolver = _outbound(r53r, network)
    interface = ec2.create_vpc_endpoint(
        VpcId=network["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.sts",
        VpcEndpointType="Interface",
        SubnetIds=network["subnets"],
        SecurityGroupIds=[network["group"]],
    )["VpcEndpoint"]
    # Then every address is inside its subnet, none of them one AWS reserves, and no two alike
    addresses = [
        (a["SubnetId"], a["Ip"])
        for a in r53r.list_resolver_endpoint_ip_addresses(ResolverEndpointId=resolver["Id"])["IpAddresses"]
    ]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=interface["NetworkInterfaceIds"])
    addresses += [(n["SubnetId"], n["PrivateIpAddress"]) for n in enis["NetworkInterfaces"]]
    assert len(addresses) == 4
    for subnet, address in addresses:
        cidr = network["cidrs"][subnet]
        assert ipaddress.ip_address(address) in ipaddress.ip_network(cidr), (address, cidr)
        assert address not in _reserved(cidr)
    assert len({a for _, a in addresses}) == 4


def test_a_gateway_endpoint_has_no_private_dns(ec2: Any, network: dict[str, Any]) -> None:
    # When an S3 gateway endpoint is made
    created = ec2.create_vpc_endpoint(
        VpcId=network["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[network["route_table"]],
    )["VpcEndpoint"]
    # Then it reports private DNS off, when made and when described
    described = ec2.describe_vpc_endpoints(VpcEndpointIds=[created["VpcEndpointId"]])["VpcEndpoints"][0]
    assert created["PrivateDnsEnabled"] is False
    assert described["PrivateDnsEnabled"] is False


def test_a_target_without_a_port_targets_port_53(r53r: Any, network: dict[str, Any]) -> None:
    # When a rule is created with a target IP and no port
    endpoint = _outbound(r53r, network)
    rule = _forward_rule(r53r, endpoint["Id"], "corp.example", "no-port")
    # Then the target's port is 53
    assert rule["TargetIps"] == [{"Ip": "10.99.0.10", "Port": 53}]
    assert r53r.get_resolver_rule(ResolverRuleId=rule["Id"])["ResolverRule"]["TargetIps"] == [
        {"Ip": "10.99.0.10", "Port": 53}
    ]
