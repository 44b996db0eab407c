"""The local stack's DNS: each VPC's Route 53 Resolver as a real loopback DNS server answering from the
emulated AWS state, forwarding through the address map to the corporate stand-ins (loopback only)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dbx_privatelink.aws.dns_state import DnsStateClient
from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.dns import LocalDns, moto_patches
from dbx_privatelink_local.seed import CORPORATE_DNS_IPS, create_data_plane
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
SERVICES = default_catalog().region(REGION)
assert SERVICES is not None
WORKSPACE_NAME = SERVICES.private_dns_name
SETTINGS = LocalAwsSettings(
    aws_endpoint_available_after=0,
    accepted_endpoint_available_after=0,
    private_dns_update_after=0,
    # Resolver endpoints and associations final at once: these tests ask the resolvers right after a change.
    resolver_endpoint_operational_after=0,
    resolver_endpoint_deleted_after=0,
    rule_association_complete_after=0,
    rule_association_deleted_after=0,
    cloudtrail_delay=3600,
)


def test_attach_local_dns_to_the_local_stack() -> None:
    # First in the module: the LocalStack must not run next to the module's LocalAws (one per process).
    # Given the local stack with its seeded environment and the seed's "." rule to the corporate servers
    with LocalStack(LocalStackConfig(region=REGION)) as stack:
        env = stack.environment
        assert env is not None
        resolver = stack.client("route53resolver")
        sg = stack.client("ec2").create_security_group(VpcId=env.dns_vpc_id, GroupName="r", Description="53")
        outbound = resolver.create_resolver_endpoint(
            CreatorRequestId="outbound",
            SecurityGroupIds=[sg["GroupId"]],
            Direction="OUTBOUND",
            IpAddresses=[{"SubnetId": s} for s in env.dns_subnet_ids],
        )["ResolverEndpoint"]["Id"]
        dot = resolver.create_resolver_rule(
            CreatorRequestId="dot",
            RuleType="FORWARD",
            DomainName=".",
            TargetIps=[{"Ip": ip, "Port": 53} for ip in env.corporate_dns_ips],  # moto needs Port
            ResolverEndpointId=outbound,
        )["ResolverRule"]["Id"]
        resolver.associate_resolver_rule(ResolverRuleId=dot, VPCId=env.vpc_id)

        # When the stack's DNS servers (attached by LocalStack.start()) are asked
        local_dns = stack.dns
        assert local_dns is not None
        mapping = json.loads(local_dns.address_map_json())

        # Then the seeded VPCs and corporate servers are on loopback, and the data plane resolves corp names
        assert set(mapping) >= {
            "10.0.0.2:53",
            "10.10.0.2:53",
            "10.20.0.2:53",
            "10.10.0.53:53",
            "10.10.0.54:53",
        }
        # (once the association has left CREATING)
        assert _answers(mapping["10.0.0.2:53"], "git.corp.example.internal", ["10.10.0.80"])
        assert _ask(mapping["10.20.0.2:53"], "git.corp.example.internal").rcode() == dns.rcode.NXDOMAIN

        # And a change AWS has answered is what the next query sees (no wait for the state cache)
        resolver.disassociate_resolver_rule(ResolverRuleId=dot, VPCId=env.vpc_id)
        assert _a(_ask(mapping["10.0.0.2:53"], "git.corp.example.internal")) == []
        # And so is an association's own move to COMPLETE, long before the 30 s the state is kept
        assert _gone(resolver, dot)
        resolver.associate_resolver_rule(ResolverRuleId=dot, VPCId=env.vpc_id)
        assert _answers(mapping["10.0.0.2:53"], "git.corp.example.internal", ["10.10.0.80"])


def _answers(address: str, name: str, addresses: list[str], timeout: float = 20.0) -> bool:
    """Whether the server answers `name` with `addresses` within `timeout` seconds (below the local DNS's
    30 s state cache, so a True is the change seen, not the cache expiring). A query that gets no answer in
    its own 3 s (a loaded machine, a datagram lost) is asked again within the bound."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if _a(_query(address, name)) == addresses:
                return True
        except dns.exception.Timeout:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _gone(resolver: Any, rule_id: str, timeout: float = 10.0) -> bool:
    """Whether every association of the rule has left DELETING within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    filters = [{"Name": "ResolverRuleId", "Values": [rule_id]}]
    while resolver.list_resolver_rule_associations(Filters=filters)["ResolverRuleAssociations"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    moto_patches.install()  # what LocalDns.start() installs; the adapter test reads before any LocalDns
    with LocalAws(SETTINGS, time_scale=TimeScale(0.01)) as local:
        yield local


@pytest.fixture
def session(aws: LocalAws) -> Any:
    aws.reset()
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _client(session: Any, aws: LocalAws, service: str) -> Any:
    return session.client(service, endpoint_url=aws.endpoint_url)


@dataclass
class World:
    data_vpc: str
    dns_vpc: str
    peered_vpc: str
    outbound_id: str
    dot_rule: str
    dot_association: str
    workspace_ip: str
    sts_ip: str
    peered_subnets: list[str]
    data_subnets: list[str]
    sg: str


def _eni_ip(ec2: Any, endpoint_id: str) -> str:
    endpoint = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
    eni = endpoint["NetworkInterfaceIds"][0]
    return str(
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["PrivateIpAddress"]
    )


@pytest.fixture
def world(aws: LocalAws, session: Any) -> World:
    """The seed's custom DNS: outbound endpoint in the DNS VPC, "." to the corporate servers, amazonaws.com
    SYSTEM, both associated with the data-plane VPC; the workspace endpoint with private DNS on."""
    ec2 = _client(session, aws, "ec2")
    resolver = _client(session, aws, "route53resolver")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    plane = create_data_plane(ec2, "10.0.0.0/22", "privatelink-test", azs)
    dns_vpc = ec2.create_vpc(CidrBlock="10.10.0.0/24")["Vpc"]["VpcId"]
    dns_subnets = [
        ec2.create_subnet(VpcId=dns_vpc, CidrBlock=f"10.10.0.{i * 128}/25", AvailabilityZone=azs[i])[
            "Subnet"
        ]["SubnetId"]
        for i in range(2)
    ]
    peered = ec2.create_vpc(CidrBlock="10.20.0.0/24")["Vpc"]["VpcId"]
    peered_subnets = [
        ec2.create_subnet(VpcId=peered, CidrBlock=f"10.20.0.{i * 128}/25", AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    sg = ec2.create_security_group(VpcId=dns_vpc, GroupName="resolver", Description="dns 53")["GroupId"]

    workspace = ec2.create_vpc_endpoint(
        VpcId=plane.vpc_id,
        ServiceName=SERVICES.workspace_service,
        VpcEndpointType="Interface",
        SubnetIds=[plane.endpoint_subnet_id],
        SecurityGroupIds=[plane.endpoint_sg_id],
    )["VpcEndpoint"]["VpcEndpointId"]
    aws.endpoints.accept(aws.account_id, REGION, workspace)
    ec2.modify_vpc_endpoint(VpcEndpointId=workspace, PrivateDnsEnabled=True)
    sts = ec2.create_vpc_endpoint(
        VpcId=plane.vpc_id,
        ServiceName=f"com.amazonaws.{REGION}.sts",
        VpcEndpointType="Interface",
        SubnetIds=[plane.endpoint_subnet_id],
        SecurityGroupIds=[plane.endpoint_sg_id],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]

    outbound = resolver.create_resolver_endpoint(
        CreatorRequestId="outbound",
        Name="dns-vpc-outbound",
        SecurityGroupIds=[sg],
        Direction="OUTBOUND",
        IpAddresses=[{"SubnetId": s} for s in dns_subnets],
    )["ResolverEndpoint"]["Id"]
    dot = resolver.create_resolver_rule(
        CreatorRequestId="dot",
        Name="everything-to-corporate",
        RuleType="FORWARD",
        DomainName=".",
        TargetIps=[{"Ip": ip, "Port": 53} for ip in CORPORATE_DNS_IPS],
        ResolverEndpointId=outbound,
    )["ResolverRule"]["Id"]
    aws_rule = resolver.create_resolver_rule(
        CreatorRequestId="aws", Name="aws-names", RuleType="SYSTEM", DomainName="amazonaws.com"
    )["ResolverRule"]["Id"]
    association = resolver.associate_resolver_rule(ResolverRuleId=dot, VPCId=plane.vpc_id)[
        "ResolverRuleAssociation"
    ]
    resolver.associate_resolver_rule(ResolverRuleId=aws_rule, VPCId=plane.vpc_id)
    return World(
        data_vpc=plane.vpc_id,
        dns_vpc=dns_vpc,
        peered_vpc=peered,
        outbound_id=outbound,
        dot_rule=dot,
        dot_association=association["Id"],
        workspace_ip=_eni_ip(ec2, workspace),
        sts_ip=_eni_ip(ec2, sts),
        peered_subnets=peered_subnets,
        data_subnets=plane.workspace_subnet_ids,
        sg=sg,
    )


@pytest.fixture
def local_dns(aws: LocalAws, world: World) -> Iterator[LocalDns]:
    server = LocalDns(aws.endpoint_url, REGION).start()
    try:
        yield server
    finally:
        server.stop()


# One query's own wait, and the bound within which an unanswered query is asked again: on a loaded machine
# (two suites side by side) a reply can come after 3 s, or a datagram be lost, with the server still right.
QUERY_TIMEOUT_S = 3.0
ASK_WITHIN_S = 30.0


def _query(address: str, name: str, *, tcp: bool = False, rdtype: str = "A") -> dns.message.Message:
    """One query, waiting QUERY_TIMEOUT_S for its reply."""
    host, port = address.split(":")
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, host, port=int(port), timeout=QUERY_TIMEOUT_S)
    return dns.query.udp(query, host, port=int(port), timeout=QUERY_TIMEOUT_S)


def _ask(address: str, name: str, *, tcp: bool = False, rdtype: str = "A") -> dns.message.Message:
    """The reply to `name`, asked again while a query goes unanswered, within ASK_WITHIN_S."""
    deadline = time.monotonic() + ASK_WITHIN_S
    while True:
        try:
            return _query(address, name, tcp=tcp, rdtype=rdtype)
        except dns.exception.Timeout:
            if time.monotonic() > deadline:
                raise


def _a(reply: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


def test_moto_endpoints_list_their_private_dns_names_in_dns_entries_as_on_aws(
    aws: LocalAws, world: World
) -> None:
    # Given the workspace endpoint with private DNS on (the local patch closes moto's DnsEntries gap)
    state = DnsStateClient.from_session(
        boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing"),
        REGION,
        endpoint_url=aws.endpoint_url,
    ).read()

    # Then the adapter reads the names, the ENI IPs and the rules as AWS would report them
    workspace = next(e for e in state.endpoints if e.service_name == SERVICES.workspace_service)
    assert workspace.private_dns_names == (WORKSPACE_NAME,)
    assert workspace.ips == (world.workspace_ip,)
    ec2 = boto3.client(
        "ec2",
        endpoint_url=aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    entries = ec2.describe_vpc_endpoints(VpcEndpointIds=[workspace.endpoint_id])["VpcEndpoints"][0][
        "DnsEntries"
    ]
    assert WORKSPACE_NAME in [e["DnsName"] for e in entries]
    assert {r.domain for r in state.rules} >= {".", "amazonaws.com"}
    outbound = next(e for e in state.resolver_endpoints if e.endpoint_id == world.outbound_id)
    # (only an inbound endpoint's addresses answer queries: an outbound one's are not read)
    assert outbound.direction == "OUTBOUND" and outbound.status == "OPERATIONAL" and outbound.ips == ()

    # And turning private DNS off takes the name out of DnsEntries again
    ec2.modify_vpc_endpoint(VpcEndpointId=workspace.endpoint_id, PrivateDnsEnabled=False)
    entries = ec2.describe_vpc_endpoints(VpcEndpointIds=[workspace.endpoint_id])["VpcEndpoints"][0][
        "DnsEntries"
    ]
    assert WORKSPACE_NAME not in [e["DnsName"] for e in entries]


def test_the_data_plane_resolver_answers_like_route53_resolver(local_dns: LocalDns, world: World) -> None:
    resolver = local_dns.resolver_address(world.data_vpc)

    # The workspace name: the endpoint's private DNS (more specific than ".") -> the ENI address
    reply = _ask(resolver, WORKSPACE_NAME)
    assert reply.rcode() == dns.rcode.NOERROR
    assert _a(reply) == [world.workspace_ip]
    assert reply.flags & dns.flags.RA

    # An AWS name with an endpoint: the SYSTEM rule keeps it on Route 53, which answers the endpoint's IP
    assert _a(_ask(resolver, f"sts.{REGION}.amazonaws.com", tcp=True)) == [world.sts_ip]

    # A corporate name: "." forwards it through the outbound endpoint to the corporate stand-in
    assert _a(_ask(resolver, "git.corp.example.internal")) == ["10.10.0.80"]
    wiki = _ask(resolver, "wiki.corp.example.internal", tcp=True)
    assert [rrset.rdtype for rrset in wiki.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert _a(wiki) == ["10.10.0.80"]

    # A public name goes to the corporate servers too, which never reach the internet: NXDOMAIN
    assert _ask(resolver, "accounts.cloud.databricks.com").rcode() == dns.rcode.NXDOMAIN
    # Other types: the A query's status, no records
    assert _ask(resolver, WORKSPACE_NAME, rdtype="AAAA").answer == []


def test_the_address_map_covers_every_resolver_and_corporate_server(
    local_dns: LocalDns, world: World
) -> None:
    mapping = local_dns.address_map()
    assert mapping["10.0.0.2:53"] == local_dns.resolver_address(world.data_vpc)
    assert mapping["10.10.0.2:53"] == local_dns.resolver_address(world.dns_vpc)
    assert mapping["10.20.0.2:53"] == local_dns.resolver_address(world.peered_vpc)
    for ip in CORPORATE_DNS_IPS:
        assert mapping[f"{ip}:53"] == local_dns.corporate_address(ip)
    assert all(value.startswith("127.0.0.1:") for value in mapping.values())
    # The corporate stand-in answers its zone itself, and nothing else
    assert _a(_ask(mapping["10.10.0.54:53"], "ldap.corp.example.internal")) == ["10.10.0.81"]
    assert _ask(mapping["10.10.0.53:53"], "nope.corp.example.internal").rcode() == dns.rcode.NXDOMAIN


def test_disassociating_the_dot_rule_changes_the_answer_within_a_second(
    aws: LocalAws, session: Any, local_dns: LocalDns, world: World
) -> None:
    resolver = local_dns.resolver_address(world.data_vpc)
    assert _a(_ask(resolver, "git.corp.example.internal")) == ["10.10.0.80"]

    # When the "." rule is disassociated by hand
    _client(session, aws, "route53resolver").disassociate_resolver_rule(
        ResolverRuleId=world.dot_rule, VPCId=world.data_vpc
    )
    changed_at = time.monotonic()

    # Then within a second the corp name is no longer forwarded (public DNS: NXDOMAIN locally) ...
    rcode = dns.rcode.NOERROR
    while time.monotonic() - changed_at < 1.0:
        rcode = _ask(resolver, "git.corp.example.internal").rcode()
        if rcode == dns.rcode.NXDOMAIN:
            break
        time.sleep(0.05)
    assert rcode == dns.rcode.NXDOMAIN
    # ... and the endpoint's private DNS still answers
    assert _a(_ask(resolver, WORKSPACE_NAME)) == [world.workspace_ip]


def test_inbound_pattern_peered_vpc_resolves_a_zone_only_the_data_plane_sees(
    aws: LocalAws, session: Any, local_dns: LocalDns, world: World
) -> None:
    # Given a private zone associated with the data-plane VPC only, an inbound endpoint there, and in the
    # peered VPC an outbound endpoint and a rule forwarding the zone to the inbound IPs (seeds 003/004)
    route53 = _client(session, aws, "route53")
    resolver = _client(session, aws, "route53resolver")
    ec2 = _client(session, aws, "ec2")
    zone = route53.create_hosted_zone(
        Name="eks.internal",
        CallerReference="eks",
        HostedZoneConfig={"PrivateZone": True, "Comment": "only the data plane"},
        VPC={"VPCRegion": REGION, "VPCId": world.data_vpc},
    )["HostedZone"]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "api.eks.internal",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "10.0.1.7"}],
                    },
                }
            ]
        },
    )
    inbound_sg = ec2.create_security_group(VpcId=world.data_vpc, GroupName="inbound", Description="53")[
        "GroupId"
    ]
    inbound = resolver.create_resolver_endpoint(
        CreatorRequestId="inbound",
        SecurityGroupIds=[inbound_sg],
        Direction="INBOUND",
        IpAddresses=[{"SubnetId": s} for s in world.data_subnets],
    )["ResolverEndpoint"]["Id"]
    inbound_ips = [
        a["Ip"]
        for a in resolver.list_resolver_endpoint_ip_addresses(ResolverEndpointId=inbound)["IpAddresses"]
    ]
    peered_sg = ec2.create_security_group(VpcId=world.peered_vpc, GroupName="out", Description="53")[
        "GroupId"
    ]
    outbound = resolver.create_resolver_endpoint(
        CreatorRequestId="peered-outbound",
        SecurityGroupIds=[peered_sg],
        Direction="OUTBOUND",
        IpAddresses=[{"SubnetId": s} for s in world.peered_subnets],
    )["ResolverEndpoint"]["Id"]
    rule = resolver.create_resolver_rule(
        CreatorRequestId="eks",
        RuleType="FORWARD",
        DomainName="eks.internal",
        TargetIps=[{"Ip": ip, "Port": 53} for ip in inbound_ips],
        ResolverEndpointId=outbound,
    )["ResolverRule"]["Id"]
    peered_resolver = local_dns.resolver_address(world.peered_vpc)
    local_dns.invalidate()
    assert _ask(peered_resolver, "api.eks.internal").rcode() == dns.rcode.NXDOMAIN  # not associated yet

    # When the rule is associated with the peered VPC
    resolver.associate_resolver_rule(ResolverRuleId=rule, VPCId=world.peered_vpc)
    local_dns.invalidate()

    # Then the peered VPC's resolver answers through the inbound endpoint, from the data plane's zone
    assert _a(_ask(peered_resolver, "api.eks.internal")) == ["10.0.1.7"]
    path = local_dns.explain(world.peered_vpc, "api.eks.internal")
    assert [s.action for s in path.steps] == ["match", "forward", "inbound", "match"]
    # And the inbound IPs are in the address map, answering as the data-plane VPC
    mapping = local_dns.address_map()
    for ip in inbound_ips:
        assert mapping[f"{ip}:53"] == local_dns.resolver_address(world.data_vpc)
    assert _a(_ask(mapping[f"{inbound_ips[0]}:53"], "api.eks.internal")) == ["10.0.1.7"]


def test_stopped_servers_release_their_ports(aws: LocalAws, world: World) -> None:
    server = LocalDns(aws.endpoint_url, REGION, corporate_ips=["10.10.0.53"]).start()
    address = server.resolver_address(world.data_vpc)
    server.stop()
    host, port = address.split(":")
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(dns.message.make_query("x.example", "A"), host, port=int(port), timeout=0.3)
