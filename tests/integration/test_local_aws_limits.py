"""The emulated AWS refuses what AWS refuses a fleet: request rates past AWS's limits (opt-in), a second private
DNS name in one VPC, the 61st rule of a security group and the 6th group on an interface endpoint."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from integration.local_servers import operator_client

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings, security_group_patches
from dbx_privatelink_local.aws.rate_limits import EC2_ENDPOINT_MUTATIONS, ROUTE53_RESOLVER
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
SERVICES = default_catalog().region(REGION)
assert SERVICES is not None
STS = f"com.amazonaws.{REGION}.sts"
# 1 emulated second = 10 wall seconds: Resolver's 5 tokens per emulated second are one per 2 wall seconds, so a
# burst stays refused long enough to see it on a loaded machine, and one token comes back in 2 seconds.
SCALE = TimeScale(10.0)
RESOLVER_TOKEN_WALL_S = SCALE.scaled(1 / ROUTE53_RESOLVER.refill_per_second)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(LocalAwsSettings(cloudtrail_delay=3600), time_scale=SCALE) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> None:
    aws.reset()


@pytest.fixture
def limited(aws: LocalAws) -> Iterator[LocalAws]:
    aws.rate_limits.enabled = True
    try:
        yield aws
    finally:
        aws.rate_limits.enabled = False


@pytest.fixture
def ec2(aws: LocalAws) -> Any:
    return operator_client(aws, "ec2", REGION)


@pytest.fixture
def vpc(ec2: Any) -> str:
    vpc_id: str = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    return vpc_id


def _client(aws: LocalAws, service: str, key: str) -> Any:
    """A client with credentials of its own and no SDK retries: one call is one request."""
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _code(call: Callable[[], Any]) -> str:
    """The error code the call was answered with, or "ok"."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return {
        "code": raised.value.response["Error"]["Code"],
        "message": raised.value.response["Error"]["Message"],
        "status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


# --- rate limits ---------------------------------------------------------------------------------------


def test_resolver_limit_is_shared_by_every_client_and_refills_in_emulated_time(limited: LocalAws) -> None:
    # Given two callers with credentials of their own in the same account
    first = _client(limited, "route53resolver", "AKIAFIRSTCALLER")
    second = _client(limited, "route53resolver", "AKIASECONDCALLER")
    allowed: Counter[str] = Counter()
    refused: Counter[str] = Counter()

    def call(client: Any, action: str) -> str:
        code = _code(getattr(client, action))
        key = f"route53resolver:{''.join(w.title() for w in action.split('_'))}"
        (allowed if code == "ok" else refused)[key] += 1
        return code

    # When the first lists rules back to back until Resolver refuses it
    codes = []
    for _ in range(50):
        codes.append(call(first, "list_resolver_rules"))
        if codes[-1] != "ok":
            break

    # Then a burst of 5 went through (a 6th, had a token come back meanwhile), then ThrottlingException
    assert codes[-1] == "ThrottlingException"
    assert len(codes) - 1 in (5, 6), codes
    # And the second caller is refused too, for any action, reads included: the limit is the account's
    answer = _error(second.list_resolver_endpoints)
    refused["route53resolver:ListResolverEndpoints"] += 1
    assert answer == {"code": "ThrottlingException", "message": "Rate exceeded", "status": 400}

    # When one token's worth of emulated time (1/5 s) has passed
    time.sleep(RESOLVER_TOKEN_WALL_S)
    deadline = time.monotonic() + 10 * RESOLVER_TOKEN_WALL_S
    while call(second, "list_resolver_endpoints") != "ok":
        assert time.monotonic() < deadline, "no token came back"
        time.sleep(RESOLVER_TOKEN_WALL_S / 10)

    # Then the second caller got that one token, and the bucket is empty again
    assert call(first, "list_resolver_rules") == "ThrottlingException"
    # And every call the limit covered is counted, refused and allowed
    assert limited.rate_limits.refused() == dict(refused)
    assert limited.rate_limits.allowed() == dict(allowed)


def test_reset_fills_the_buckets_and_forgets_the_counts(limited: LocalAws) -> None:
    resolver = _client(limited, "route53resolver", "AKIAFIRSTCALLER")
    for _ in range(50):
        if _code(resolver.list_resolver_rules) != "ok":
            break
    assert limited.rate_limits.refused() == {"route53resolver:ListResolverRules": 1}

    limited.reset()

    assert limited.rate_limits.refused() == {} and limited.rate_limits.allowed() == {}
    assert [_code(resolver.list_resolver_rules) for _ in range(5)] == ["ok"] * 5
    assert limited.rate_limits.enabled


def test_ec2_endpoint_bucket_is_the_accounts_and_spares_other_calls(limited: LocalAws, vpc: str) -> None:
    # Given two callers in the same account
    first = _client(limited, "ec2", "AKIAFIRSTCALLER")
    second = _client(limited, "ec2", "AKIASECONDCALLER")

    def create(client: Any) -> str:
        return _code(lambda: client.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3"))

    # When they create gateway endpoints, three and one, then the first a fifth and the second deletes one
    codes = [create(first), create(first), create(first), create(second), create(first)]
    gone = _code(
        lambda: second.delete_vpc_endpoints(
            VpcEndpointIds=[second.describe_vpc_endpoints()["VpcEndpoints"][0]["VpcEndpointId"]]
        )
    )

    # Then the bucket of 4 is shared: the fifth mutation and the deletion are refused, the reads are not
    assert codes == ["ok", "ok", "ok", "ok", "RequestLimitExceeded"]
    assert gone == "RequestLimitExceeded"
    assert len(first.describe_vpc_endpoints()["VpcEndpoints"]) == 4
    assert limited.rate_limits.refused() == {"ec2:CreateVpcEndpoint": 1, "ec2:DeleteVpcEndpoints": 1}
    assert limited.rate_limits.allowed() == {"ec2:CreateVpcEndpoint": EC2_ENDPOINT_MUTATIONS.capacity}


def test_time_factor_zero_never_throttles(limited: LocalAws) -> None:
    resolver = _client(limited, "route53resolver", "AKIAFIRSTCALLER")
    previous = SCALE.factor
    SCALE.factor = 0
    try:
        codes = [_code(resolver.list_resolver_rules) for _ in range(20)]
    finally:
        SCALE.factor = previous

    assert codes == ["ok"] * 20
    assert limited.rate_limits.refused() == {}


def test_off_by_default_and_one_setting_turns_both_on() -> None:
    assert not LocalAws(LocalAwsSettings()).rate_limits.ec2_endpoints.enabled
    assert not LocalAws(LocalAwsSettings()).rate_limits.route53resolver.enabled

    both = LocalAws(LocalAwsSettings(aws_rate_limits=True)).rate_limits
    ec2_only = LocalAws(LocalAwsSettings(endpoint_rate_limit=True)).rate_limits

    assert both.ec2_endpoints.enabled and both.route53resolver.enabled
    assert ec2_only.ec2_endpoints.enabled and not ec2_only.route53resolver.enabled


# --- one private DNS name per VPC ----------------------------------------------------------------------


def _conflict(name: str, vpc: str) -> dict[str, Any]:
    return {
        "code": "InvalidParameter",
        "message": f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
        f"{name} in the VPC {vpc}",
        "status": 400,
    }


def _interface(ec2: Any, vpc: str, service: str, **extra: Any) -> dict[str, Any]:
    return dict(
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service, VpcEndpointType="Interface", **extra)[
            "VpcEndpoint"
        ]
    )


def test_second_endpoint_with_private_dns_for_a_service_is_refused_on_create(ec2: Any, vpc: str) -> None:
    # Given an STS endpoint with private DNS (omitted: on, as AWS defaults for AWS services)
    first = _interface(ec2, vpc, STS, ClientToken="ws-1-sts")
    assert first["PrivateDnsEnabled"] is True

    # When a second one asks for the same private DNS name in the same VPC, explicitly or by default
    explicit = _error(lambda: _interface(ec2, vpc, STS, PrivateDnsEnabled=True))
    default = _error(lambda: _interface(ec2, vpc, STS))

    # Then AWS's refusal, and nothing was created
    assert explicit == default == _conflict(f"sts.{REGION}.amazonaws.com", vpc)
    assert [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]] == [
        first["VpcEndpointId"]
    ]

    # When the first request is replayed with its ClientToken
    again = _interface(ec2, vpc, STS, ClientToken="ws-1-sts")
    # Then it is answered with the first endpoint, not refused as a conflict with itself
    assert again["VpcEndpointId"] == first["VpcEndpointId"]

    # And without private DNS, or in another VPC, or once the first is deleted, a second one is created
    assert _interface(ec2, vpc, STS, PrivateDnsEnabled=False)["PrivateDnsEnabled"] is False
    other_vpc = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    assert _interface(ec2, other_vpc, STS)["PrivateDnsEnabled"] is True
    ec2.delete_vpc_endpoints(VpcEndpointIds=[first["VpcEndpointId"]])
    assert _interface(ec2, vpc, STS)["PrivateDnsEnabled"] is True


def test_turning_private_dns_on_is_refused_while_another_endpoint_has_it(
    aws: LocalAws, ec2: Any, vpc: str
) -> None:
    # Given two accepted endpoints to the Databricks workspace service in one VPC, private DNS on for one
    ids = [_interface(ec2, vpc, SERVICES.workspace_service)["VpcEndpointId"] for _ in range(2)]
    for endpoint_id in ids:
        aws.view.accept_vpc_endpoint(REGION, endpoint_id)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids[0], PrivateDnsEnabled=True)

    # When the other asks for it
    answer = _error(lambda: ec2.modify_vpc_endpoint(VpcEndpointId=ids[1], PrivateDnsEnabled=True))

    # Then AWS's refusal names the catalog's private DNS name, and the flag stays off
    assert answer == _conflict(SERVICES.private_dns_name, vpc)
    described = {
        e["VpcEndpointId"]: e for e in ec2.describe_vpc_endpoints(VpcEndpointIds=ids)["VpcEndpoints"]
    }
    assert (described[ids[0]]["PrivateDnsEnabled"], described[ids[1]]["PrivateDnsEnabled"]) == (True, False)

    # When the first gives it up, the other may take it (and asking again for its own is no conflict)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids[0], PrivateDnsEnabled=False)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids[1], PrivateDnsEnabled=True)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids[1], PrivateDnsEnabled=True)
    assert _error(lambda: ec2.modify_vpc_endpoint(VpcEndpointId=ids[0], PrivateDnsEnabled=True)) == _conflict(
        SERVICES.private_dns_name, vpc
    )


# --- rules per security group --------------------------------------------------------------------------


def _ranges(n: int, third: int = 0) -> list[dict[str, str]]:
    return [{"CidrIp": f"10.{third}.{i}.0/24"} for i in range(n)]


def _tcp(ranges: list[dict[str, str]], port: int = 443) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": ranges}


def _group(ec2: Any, vpc: str, name: str) -> str:
    group_id: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    return group_id


def _rules(ec2: Any, group: str, egress: bool) -> int:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    return sum(1 for r in rules["SecurityGroupRules"] if r["IsEgress"] is egress)


LIMIT_REACHED = {
    "code": "RulesPerSecurityGroupLimitExceeded",
    "message": "The maximum number of rules per security group has been reached.",
    "status": 400,
}


def test_the_61st_inbound_rule_is_refused_and_a_request_is_refused_whole(ec2: Any, vpc: str) -> None:
    # Given a group with 60 inbound rules (one permission, 60 CIDR ranges)
    group = _group(ec2, vpc, "full-ingress")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(_ranges(60))])

    # When a 61st is added, then AWS's refusal
    assert (
        _error(
            lambda: ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(_ranges(1, 1))])
        )
        == LIMIT_REACHED
    )
    assert _rules(ec2, group, egress=False) == 60

    # Given a group with 59, when one request brings two permissions of one range each (61 together)
    nearly = _group(ec2, vpc, "nearly-full")
    ec2.authorize_security_group_ingress(GroupId=nearly, IpPermissions=[_tcp(_ranges(59))])
    answer = _error(
        lambda: ec2.authorize_security_group_ingress(
            GroupId=nearly, IpPermissions=[_tcp(_ranges(1, 1), 8443), _tcp(_ranges(1, 2), 8444)]
        )
    )
    # Then the whole request is refused: neither permission was added
    assert answer == LIMIT_REACHED
    assert _rules(ec2, nearly, egress=False) == 59


def test_the_61st_outbound_rule_is_refused_counting_the_default_egress_rule(ec2: Any, vpc: str) -> None:
    # Given a new group: it has its default egress rule (all traffic to 0.0.0.0/0)
    group = _group(ec2, vpc, "egress")
    assert _rules(ec2, group, egress=True) == 1

    # When 59 more come, then they fit; when one more comes, then it is refused
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[_tcp(_ranges(59))])
    assert (
        _error(
            lambda: ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[_tcp(_ranges(1, 1))])
        )
        == LIMIT_REACHED
    )
    assert _rules(ec2, group, egress=True) == 60


def test_groups_and_prefix_lists_count_toward_the_quota(ec2: Any, vpc: str) -> None:
    # Given a prefix list of at most 10 entries (holding 1) and a group with 48 CIDR rules
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="corp", MaxEntries=10, AddressFamily="IPv4", Entries=[{"Cidr": "192.168.0.0/16"}]
    )["PrefixList"]["PrefixListId"]
    group = _group(ec2, vpc, "mixed")
    peer = _group(ec2, vpc, "peer")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(_ranges(48))])

    # When a referenced group (1) and the prefix list (its 10 max entries) are added: 59
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": peer}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "PrefixListIds": [{"PrefixListId": prefix_list}],
            },
        ],
    )
    # Then one IPv6 range still fits (60), and the same prefix list on another port does not (70)
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": [{"CidrIpv6": "fd00::/64"}]}
        ],
    )
    refused = _error(
        lambda: ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 23,
                    "ToPort": 23,
                    "PrefixListIds": [{"PrefixListId": prefix_list}],
                }
            ],
        )
    )
    assert refused == LIMIT_REACHED
    assert (
        _rules(ec2, group, egress=False) == 51
    )  # 48 CIDRs, a group, a prefix list (weighing 10), an IPv6 range


def test_the_rule_quota_is_a_setting(aws: LocalAws, ec2: Any, vpc: str) -> None:
    # Given a raised quota (AWS lets an account raise it)
    raised = LocalAwsSettings(rules_per_security_group=100)
    security_group_patches.activate(raised)
    try:
        group = _group(ec2, vpc, "raised")
        # When 100 rules are added in two requests, then they fit (moto alone stops at 60); the 101st does not
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(_ranges(60))])
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[_tcp(_ranges(40, 1))])
        assert (
            _error(
                lambda: ec2.authorize_security_group_ingress(
                    GroupId=group, IpPermissions=[_tcp(_ranges(1, 2))]
                )
            )
            == LIMIT_REACHED
        )
    finally:
        security_group_patches.deactivate(raised)
        security_group_patches.activate(aws.settings)


# --- security groups per interface endpoint ------------------------------------------------------------

GROUPS_LIMIT = {
    "code": "SecurityGroupsPerInterfaceLimitExceeded",
    "message": "The maximum number of security groups per interface has been reached.",
    "status": 400,
}


def test_the_6th_group_on_an_interface_endpoint_is_refused(ec2: Any, vpc: str) -> None:
    # Given six groups
    groups = [_group(ec2, vpc, f"g{i}") for i in range(6)]

    # When an endpoint is created with all six, then AWS's refusal and no endpoint
    assert _error(lambda: _interface(ec2, vpc, STS, SecurityGroupIds=groups)) == GROUPS_LIMIT
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []

    # When it is created with five, then it is; when a sixth is added, then refused and the five stay
    endpoint = _interface(ec2, vpc, STS, SecurityGroupIds=groups[:5])["VpcEndpointId"]
    assert (
        _error(lambda: ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, AddSecurityGroupIds=[groups[5]]))
        == GROUPS_LIMIT
    )

    def attached() -> set[str]:
        [described] = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"]
        return {g["GroupId"] for g in described["Groups"]}

    assert attached() == set(groups[:5])

    # When one leaves as the sixth comes, in the same call, then five remain and it is accepted
    ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint, AddSecurityGroupIds=[groups[5]], RemoveSecurityGroupIds=[groups[0]]
    )
    assert attached() == set(groups[1:])
