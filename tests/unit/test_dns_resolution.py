"""How a query resolves, decided as Route 53 Resolver decides it (pure: no AWS, no sockets)."""

from __future__ import annotations

import pytest

from dbx_privatelink.dns.names import matches, normalize
from dbx_privatelink.dns.resolution import (
    DnsRecord,
    DnsState,
    EndpointDns,
    PrivateZone,
    ResolverEndpoint,
    ResolverRule,
    RuleAssociation,
    TargetAddress,
    UpstreamAnswer,
    Vpc,
    explain,
)

DATA = "vpc-0000000000000da7a"
DNS = "vpc-00000000000000d25"
PEERED = "vpc-0000000000000beef"
OUT = "rslvr-out-0000000000000001"
INBOUND = "rslvr-in-0000000000000002"
WORKSPACE = "nvirginia.privatelink.cloud.databricks.com"
STS = "sts.us-east-1.amazonaws.com"
CORP = ("10.10.0.53", "10.10.0.54")

DOT = ResolverRule(
    rule_id="rslvr-rr-dot",
    domain=".",
    rule_type="FORWARD",
    targets=tuple(TargetAddress(ip=ip) for ip in CORP),
    resolver_endpoint_id=OUT,
)
AWS = ResolverRule(rule_id="rslvr-rr-aws", domain="amazonaws.com.", rule_type="SYSTEM")


def _state(
    *,
    rules: tuple[ResolverRule, ...] = (DOT, AWS),
    associations: tuple[RuleAssociation, ...] | None = None,
    zones: tuple[PrivateZone, ...] = (),
    endpoints: tuple[EndpointDns, ...] | None = None,
    resolver_endpoints: tuple[ResolverEndpoint, ...] = (),
) -> DnsState:
    if associations is None:
        associations = tuple(RuleAssociation(rule_id=r.rule_id, vpc_id=DATA) for r in rules)
    if endpoints is None:
        endpoints = (
            EndpointDns(
                endpoint_id="vpce-workspace",
                vpc_id=DATA,
                private_dns_enabled=True,
                private_dns_names=(WORKSPACE,),
                ips=("10.0.3.10",),
            ),
            EndpointDns(
                endpoint_id="vpce-sts",
                vpc_id=DATA,
                private_dns_enabled=True,
                private_dns_names=(STS,),
                dns_names=("vpce-sts-abc.sts.us-east-1.vpce.amazonaws.com",),
                ips=("10.0.3.20",),
            ),
        )
    outbound = ResolverEndpoint(
        endpoint_id=OUT, direction="OUTBOUND", vpc_id=DNS, ips=("10.10.0.10", "10.10.0.140")
    )
    return DnsState(
        region="us-east-1",
        vpcs=(
            Vpc(vpc_id=DATA, cidr_blocks=("10.0.0.0/22",)),
            Vpc(vpc_id=DNS, cidr_blocks=("10.10.0.0/24",)),
            Vpc(vpc_id=PEERED, cidr_blocks=("10.20.0.0/24",)),
        ),
        zones=zones,
        endpoints=endpoints,
        rules=rules,
        associations=associations,
        resolver_endpoints=(outbound, *resolver_endpoints),
    )


def test_names_match_themselves_and_subdomains_and_the_root_matches_all() -> None:
    assert matches("a.example.com", "example.com")
    assert matches("example.com", "example.com")
    assert not matches("badexample.com", "example.com")
    assert matches("anything.at.all", ".")
    assert normalize("Example.COM.") == "example.com"
    assert normalize("..") == "."  # moto returns "." rules as ".."


def test_endpoint_private_dns_is_more_specific_than_the_dot_rule() -> None:
    # Given the seed's setup: "." to the corporate servers, amazonaws.com SYSTEM, the workspace endpoint
    path = explain(_state(), DATA, WORKSPACE + ".")

    # Then the endpoint's zone wins over "." and answers its ENI address
    assert path.outcome == "ANSWER"
    assert path.addresses == ("10.0.3.10",)
    assert path.steps[0].decided_by.startswith("private DNS of endpoint vpce-workspace")
    assert 'more specific than "."' in path.steps[0].why


def test_most_specific_wins_among_dot_system_rule_endpoint_and_private_zone() -> None:
    # Given a private zone for a part of amazonaws.com and the STS endpoint's private DNS
    zone = PrivateZone(
        zone_id="Z1",
        name="kinesis.us-east-1.amazonaws.com",
        vpc_ids=frozenset({DATA}),
        records=(DnsRecord(name="kinesis.us-east-1.amazonaws.com", record_type="A", values=("10.0.3.99",)),),
    )
    state = _state(zones=(zone,))

    # When names of every specificity are asked
    sts = explain(state, DATA, STS)
    kinesis = explain(state, DATA, "kinesis.us-east-1.amazonaws.com")
    s3 = explain(state, DATA, "s3.us-east-1.amazonaws.com")
    corp = explain(state, DATA, "git.corp.example.internal")

    # Then each goes to the most specific match
    assert (sts.outcome, sts.addresses) == ("ANSWER", ("10.0.3.20",))
    assert "more specific than amazonaws.com" in sts.steps[0].why
    assert (kinesis.outcome, kinesis.addresses) == ("ANSWER", ("10.0.3.99",))
    assert kinesis.steps[0].decided_by == "private hosted zone Z1 kinesis.us-east-1.amazonaws.com"
    assert s3.outcome == "PUBLIC"
    assert s3.steps[0].decided_by.startswith("SYSTEM rule rslvr-rr-aws")
    assert corp.outcome == "FORWARDED"
    assert corp.steps[-1].targets == ("10.10.0.53:53", "10.10.0.54:53")
    assert corp.steps[-1].via == OUT
    assert "forwarded to 10.10.0.53:53 via " + OUT in corp.steps[-1].why


def test_without_the_aws_rule_amazonaws_com_goes_to_the_corporate_servers() -> None:
    # Given only the "." rule (no SYSTEM rule for amazonaws.com)
    state = _state(rules=(DOT,))

    # When an AWS name without an endpoint is asked
    path = explain(state, DATA, "kinesis.us-east-1.amazonaws.com")

    # Then it is forwarded to the corporate servers
    assert path.outcome == "FORWARDED"
    assert path.steps[0].decided_by.startswith('FORWARD rule rslvr-rr-dot for "."')
    assert path.answered_by == "10.10.0.53:53"


def test_a_forwarding_rule_outranks_a_private_zone_of_the_same_domain() -> None:
    zone = PrivateZone(zone_id="Z2", name="corp.example.internal", vpc_ids=frozenset({DATA}))
    rule = ResolverRule(
        rule_id="rslvr-rr-corp",
        domain="corp.example.internal",
        rule_type="FORWARD",
        targets=(TargetAddress(ip="10.10.0.53"),),
        resolver_endpoint_id=OUT,
    )
    path = explain(_state(rules=(DOT, rule), zones=(zone,)), DATA, "git.corp.example.internal")
    assert path.outcome == "FORWARDED"
    assert path.steps[0].decided_by.startswith("FORWARD rule rslvr-rr-corp")
    assert "a forwarding rule outranks a private hosted zone" in path.steps[0].why


def test_a_disassociated_rule_no_longer_applies() -> None:
    # Given the "." association is gone (and another one is still being deleted)
    associations = (
        RuleAssociation(rule_id=AWS.rule_id, vpc_id=DATA),
        RuleAssociation(rule_id=DOT.rule_id, vpc_id=PEERED, status="COMPLETE"),
        RuleAssociation(rule_id=DOT.rule_id, vpc_id=DATA, status="DELETING"),
    )
    path = explain(_state(associations=associations), DATA, "git.corp.example.internal")

    # Then the corp name is left to public DNS, not forwarded
    assert path.outcome == "PUBLIC"
    assert all(s.action != "forward" for s in path.steps)


def test_private_zone_without_the_record_is_nxdomain_not_public() -> None:
    zone = PrivateZone(
        zone_id="Z3",
        name="internal.example",
        vpc_ids=frozenset({DATA}),
        records=(DnsRecord(name="db.internal.example", record_type="A", values=("10.0.1.5",)),),
    )
    path = explain(_state(rules=(), zones=(zone,)), DATA, "nope.internal.example")
    assert path.outcome == "NXDOMAIN"
    assert path.rcode == "NXDOMAIN"
    assert "does not ask public DNS" in path.reason


def test_a_name_inside_an_endpoint_zone_without_a_record_is_nxdomain() -> None:
    path = explain(_state(), DATA, "other." + WORKSPACE)
    assert path.outcome == "NXDOMAIN"


def test_endpoint_private_dns_off_or_in_another_vpc_does_not_answer() -> None:
    off = EndpointDns(
        endpoint_id="vpce-off",
        vpc_id=DATA,
        private_dns_enabled=False,
        private_dns_names=(WORKSPACE,),
        ips=("10.0.3.1",),
    )
    elsewhere = EndpointDns(
        endpoint_id="vpce-else",
        vpc_id=PEERED,
        private_dns_enabled=True,
        private_dns_names=(WORKSPACE,),
        ips=("10.20.0.9",),
    )
    path = explain(_state(rules=(AWS,), endpoints=(off, elsewhere)), DATA, WORKSPACE)
    assert path.outcome == "PUBLIC"


def _inbound_chain(protocols: tuple[str, ...] = ("Do53",)) -> DnsState:
    """Seeds 003/004: a zone only the data-plane VPC sees, an inbound endpoint there (with `protocols`),
    and in the peered VPC a rule forwarding the zone's domain to the inbound IPs through an outbound one."""
    zone = PrivateZone(
        zone_id="Z4",
        name="eks.internal",
        vpc_ids=frozenset({DATA}),
        records=(DnsRecord(name="api.eks.internal", record_type="A", values=("10.0.2.7", "10.0.1.7")),),
    )
    inbound = ResolverEndpoint(
        endpoint_id=INBOUND,
        direction="INBOUND",
        vpc_id=DATA,
        ips=("10.0.0.10", "10.0.1.10"),
        protocols=protocols,
    )
    rule = ResolverRule(
        rule_id="rslvr-rr-eks",
        domain="eks.internal",
        rule_type="FORWARD",
        targets=(TargetAddress(ip="10.0.0.10"), TargetAddress(ip="10.0.1.10")),
        resolver_endpoint_id=OUT,
    )
    return _state(
        rules=(rule,),
        associations=(RuleAssociation(rule_id=rule.rule_id, vpc_id=PEERED),),
        zones=(zone,),
        resolver_endpoints=(inbound,),
    )


def test_inbound_chain_peered_rule_to_inbound_ips_to_the_inbound_vpc_zone() -> None:
    state = _inbound_chain()

    # When the peered VPC asks
    path = explain(state, PEERED, "API.eks.internal.")

    # Then the query crosses to the data-plane VPC and its zone answers
    assert path.outcome == "ANSWER"
    assert path.addresses == ("10.0.2.7", "10.0.1.7")
    actions = [(s.action, s.vpc_id) for s in path.steps]
    assert actions == [("match", PEERED), ("forward", PEERED), ("inbound", DATA), ("match", DATA)]
    assert "inbound endpoint " + INBOUND in path.steps[1].why

    # And without the rule the peered VPC cannot see the zone
    assert (
        explain(state.model_copy(update={"associations": ()}), PEERED, "api.eks.internal").outcome == "PUBLIC"
    )


def test_an_outbound_endpoint_without_do53_forwards_nothing_and_says_why() -> None:
    # Given the seed's setup whose outbound endpoint was switched to DNS over HTTPS only
    doh_only = ResolverEndpoint(
        endpoint_id=OUT, direction="OUTBOUND", vpc_id=DNS, ips=("10.10.0.10",), protocols=("DoH",)
    )
    state = _state().model_copy(update={"resolver_endpoints": (doh_only,)})
    asked: list[str] = []

    def upstream(ip: str, port: int, name: str) -> UpstreamAnswer:
        asked.append(ip)
        return UpstreamAnswer(status="NOERROR", addresses=("10.10.0.80",))

    # When a corporate name is asked
    path = explain(state, DATA, "git.corp.example.internal", upstream=upstream)

    # Then no target is asked and the answer names the protocols
    assert path.outcome == "SERVFAIL" and not asked
    assert "not Do53" in path.reason and "DoH" in path.reason
    # And with Do53 back beside DoH the corporate server answers
    both = doh_only.model_copy(update={"protocols": ("Do53", "DoH")})
    healed = explain(
        state.model_copy(update={"resolver_endpoints": (both,)}),
        DATA,
        "git.corp.example.internal",
        upstream=upstream,
    )
    assert healed.addresses == ("10.10.0.80",) and asked == list(CORP[:1])


def test_an_inbound_endpoint_without_do53_refuses_the_forwarded_query() -> None:
    state = _inbound_chain(protocols=("DoH-FIPS",))
    path = explain(state, PEERED, "api.eks.internal")
    assert path.outcome == "SERVFAIL"
    assert "10.0.0.10:53 REFUSED" in path.reason and "10.0.1.10:53 REFUSED" in path.reason
    assert not [s for s in path.steps if s.action == "inbound"]


def test_forwarding_to_another_vpcs_resolver_continues_there() -> None:
    # The seed's variant: amazonaws.com forwarded to the DNS VPC's own resolver (10.10.0.2)
    to_resolver = ResolverRule(
        rule_id="rslvr-rr-aws-fwd",
        domain="amazonaws.com",
        rule_type="FORWARD",
        targets=(TargetAddress(ip="10.10.0.2"),),
        resolver_endpoint_id=OUT,
    )
    path = explain(_state(rules=(DOT, to_resolver)), DATA, "s3.us-east-1.amazonaws.com")
    assert path.outcome == "PUBLIC"
    assert [s.vpc_id for s in path.steps if s.action == "inbound"] == [DNS]


def test_forwarding_loop_between_vpcs_is_bounded() -> None:
    a_in = ResolverEndpoint(endpoint_id="rslvr-in-a", direction="INBOUND", vpc_id=DATA, ips=("10.0.0.10",))
    b_in = ResolverEndpoint(endpoint_id="rslvr-in-b", direction="INBOUND", vpc_id=PEERED, ips=("10.20.0.10",))
    to_b = ResolverRule(
        rule_id="rslvr-rr-to-b",
        domain="loop.example",
        rule_type="FORWARD",
        targets=(TargetAddress(ip="10.20.0.10"),),
        resolver_endpoint_id=OUT,
    )
    to_a = to_b.model_copy(update={"rule_id": "rslvr-rr-to-a", "targets": (TargetAddress(ip="10.0.0.10"),)})
    state = _state(
        rules=(to_a, to_b),
        associations=(
            RuleAssociation(rule_id="rslvr-rr-to-b", vpc_id=DATA),
            RuleAssociation(rule_id="rslvr-rr-to-a", vpc_id=PEERED),
        ),
        resolver_endpoints=(a_in, b_in),
    )
    path = explain(state, DATA, "x.loop.example", max_hops=3)
    assert path.outcome == "SERVFAIL"
    assert "forwarding hops" in path.reason
    assert sum(1 for s in path.steps if s.action == "inbound") == 3


def test_cname_chains_are_followed_through_the_rules_and_bounded() -> None:
    records = [DnsRecord(name="www.app.example", record_type="CNAME", values=("ws.app.example.",))]
    records.append(DnsRecord(name="ws.app.example", record_type="CNAME", values=(WORKSPACE,)))
    for i in range(12):
        records.append(
            DnsRecord(name=f"c{i}.app.example", record_type="CNAME", values=(f"c{i + 1}.app.example",))
        )
    records.append(DnsRecord(name="c12.app.example", record_type="A", values=("10.0.0.99",)))
    records.append(DnsRecord(name="loop1.app.example", record_type="CNAME", values=("loop2.app.example",)))
    records.append(DnsRecord(name="loop2.app.example", record_type="CNAME", values=("loop1.app.example",)))
    zone = PrivateZone(zone_id="Z5", name="app.example", vpc_ids=frozenset({DATA}), records=tuple(records))
    state = _state(zones=(zone,))

    # A chain into the endpoint's private DNS resolves through the rules again
    chain = explain(state, DATA, "www.app.example")
    assert (chain.outcome, chain.addresses) == ("ANSWER", ("10.0.3.10",))
    assert chain.cnames == (("www.app.example", "ws.app.example"), ("ws.app.example", WORKSPACE))

    # A long chain ends at the bound, a loop as soon as it repeats
    long = explain(state, DATA, "c0.app.example", max_cnames=8)
    assert long.outcome == "SERVFAIL"
    assert "more than 8 CNAMEs" in long.reason
    assert explain(state, DATA, "c4.app.example", max_cnames=8).addresses == ("10.0.0.99",)
    loop = explain(state, DATA, "loop1.app.example")
    assert (loop.outcome, loop.reason.split(":")[0]) == ("SERVFAIL", "a CNAME loop")


def test_wildcards_alias_records_and_nodata() -> None:
    zone = PrivateZone(
        zone_id="Z6",
        name="svc.example",
        vpc_ids=frozenset({DATA}),
        records=(
            DnsRecord(name="\\052.svc.example", record_type="A", values=("10.0.0.7",)),
            DnsRecord(name="alias.svc.example", record_type="A", alias_target=STS + "."),
            DnsRecord(name="txt.svc.example", record_type="TXT", values=('"hi"',)),
        ),
    )
    state = _state(zones=(zone,))
    assert explain(state, DATA, "anything.svc.example").addresses == ("10.0.0.7",)
    alias = explain(state, DATA, "alias.svc.example")
    assert alias.addresses == ("10.0.3.20",)
    assert alias.steps[1].why.startswith("alias ")
    assert explain(state, DATA, "txt.svc.example").outcome == "NODATA"


def test_endpoint_specific_names_are_public_dns_answers() -> None:
    path = explain(_state(rules=()), PEERED, "vpce-sts-abc.sts.us-east-1.vpce.amazonaws.com")
    assert (path.outcome, path.addresses) == ("ANSWER", ("10.0.3.20",))


def test_upstream_answers_are_used_and_failing_targets_skipped() -> None:
    asked: list[tuple[str, int, str]] = []

    def upstream(ip: str, port: int, name: str) -> UpstreamAnswer:
        asked.append((ip, port, name))
        if ip == "10.10.0.53":
            return UpstreamAnswer(status="TIMEOUT")
        return UpstreamAnswer(status="NOERROR", addresses=("10.10.0.80",))

    path = explain(_state(), DATA, "git.corp.example.internal", upstream=upstream)
    assert (path.outcome, path.addresses, path.answered_by) == ("ANSWER", ("10.10.0.80",), "10.10.0.54:53")
    assert [a[0] for a in asked] == ["10.10.0.53", "10.10.0.54"]

    def refusing(ip: str, port: int, name: str) -> UpstreamAnswer:
        return UpstreamAnswer(status="REFUSED")

    failed = explain(_state(), DATA, "git.corp.example.internal", upstream=refusing)
    assert failed.outcome == "SERVFAIL"
    assert failed.rcode == "SERVFAIL"

    def nx(ip: str, port: int, name: str) -> UpstreamAnswer:
        return UpstreamAnswer(status="NXDOMAIN")

    assert explain(_state(), DATA, "gone.corp.example.internal", upstream=nx).outcome == "NXDOMAIN"


def test_a_rule_whose_outbound_endpoint_is_gone_fails_and_unknown_vpcs_are_named() -> None:
    state = _state().model_copy(update={"resolver_endpoints": ()})
    path = explain(state, DATA, "git.corp.example.internal")
    assert path.outcome == "SERVFAIL"
    assert "does not exist" in path.reason
    unknown = explain(state, "vpc-0123456789abcdef0", "x.example")
    assert unknown.outcome == "SERVFAIL"
    assert "not a VPC" in unknown.reason


@pytest.mark.parametrize("status", ["CREATING", "FAILED", "OVERRIDDEN"])
def test_only_complete_associations_apply(status: str) -> None:
    associations = (RuleAssociation(rule_id=DOT.rule_id, vpc_id=DATA, status=status),)
    assert explain(_state(associations=associations), DATA, "git.corp.example.internal").outcome == "PUBLIC"


def test_the_vpc_resolver_is_cidr_base_plus_two() -> None:
    assert Vpc(vpc_id=DATA, cidr_blocks=("10.0.0.0/22",)).resolver_ip == "10.0.0.2"
    assert Vpc(vpc_id=DNS, cidr_blocks=("10.10.0.0/24", "100.64.0.0/16")).resolver_ip == "10.10.0.2"
