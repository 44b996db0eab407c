"""How a DNS query resolves inside one region, decided the way the Route 53 Resolver of a VPC decides it.

The state (`DnsState`) is what the AWS APIs say: private hosted zones and the VPCs they are associated
with, interface endpoints with private DNS on (AWS's managed zones for those are not listable, so they are
modelled from the endpoints), Route 53 Resolver rules and their associations, resolver endpoints, VPC
CIDRs. `explain(state, vpc_id, name)` returns every step a query for NAME takes from that VPC.

The rules applied, and where they come from (Route 53 Developer Guide unless noted):

1. Matching: a rule or zone matches when its domain equals the name or the name is a subdomain of it;
   "." matches every name ("How Resolver determines whether the domain name in a query matches any rules").
2. Among the forwarding and system rules associated with the VPC, the private hosted zones associated with
   it and the endpoint private DNS zones of its interface endpoints, the most specific domain (the most
   labels) wins (same page; "Public and private hosted zones that have overlapping namespaces" and
   "Private hosted zones that have overlapping namespaces": the most specific match).
3. Equal domains: a forwarding rule wins over a system rule, and both over a private hosted zone
   ("Domain names that Resolver creates autodefined system rules for": a private hosted zone is an
   autodefined rule, and a conditional forwarding rule for the same domain overrides it; AWS Knowledge
   Center "How can I use and override reverse DNS rules with Route 53 Resolver": Resolver rules, then
   rules for private hosted zones, then autodefined rules). A customer's private hosted zone wins over an
   endpoint's managed zone of the same name (not documented: AWS refuses private DNS on an endpoint when a
   conflicting zone exists, so the tie should not happen; the order only makes the answer deterministic).
4. A SYSTEM (or RECURSIVE) rule, and a name no rule matches, get Route 53's own resolution: the most
   specific private hosted zone or endpoint zone associated with the VPC, else public DNS. explain never
   queries the internet: it reports PUBLIC (except for endpoint-specific vpce names, which AWS publishes in
   public DNS and the state knows).
5. A zone that matches but has no record for the name answers NXDOMAIN; Resolver does not fall back to
   public DNS ("Considerations when working with a private hosted zone").
6. A FORWARD rule sends the query through its outbound endpoint to its target IPs. A target that is an
   inbound endpoint IP, or a VPC's own resolver (CIDR base + 2, the seed's variant), continues resolution
   as if asked in that VPC (the inbound-endpoint pattern of the seeds: the forwarded query is resolved by
   that VPC's Resolver with that VPC's zones and rules). Any other target is an outside server: its answer
   is whatever it says, known only when an `upstream` is given (the local DNS server passes one).
   Targets are tried in order; a target that times out, refuses or fails is skipped (Route 53 retries
   other targets); when none answers the result is SERVFAIL. Targets here are DNS on port 53 (Do53): an
   outbound endpoint whose protocols lack Do53 forwards nothing to them, and an inbound endpoint whose
   protocols lack Do53 refuses them (UpdateResolverEndpoint, "Protocols").
7. Rule associations apply only when COMPLETE; rules only when COMPLETE or UPDATING.
8. CNAME (and alias) records are followed from the same VPC, through the rules again, at most
   `max_cnames` times (our bound; Route 53 documents none); inbound hops at most `max_hops` times.
"""

import ipaddress
from collections.abc import Callable
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dbx_privatelink.dns.names import labels, matches, normalize

MAX_CNAMES = 8
MAX_HOPS = 4

RuleType = Literal["FORWARD", "SYSTEM", "RECURSIVE", "DELEGATE"]
Outcome = Literal["ANSWER", "NODATA", "NXDOMAIN", "FORWARDED", "PUBLIC", "SERVFAIL"]
UpstreamStatus = Literal["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "TIMEOUT"]
StepAction = Literal["match", "zone", "cname", "forward", "inbound", "upstream", "public", "error"]

_APPLIED_ASSOCIATION = {"COMPLETE"}
_APPLIED_RULE = {"COMPLETE", "UPDATING"}
_GONE_ENDPOINT = {"deleted", "deleting", "failed", "rejected", "expired"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TargetAddress(_Model):
    ip: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


class ResolverRule(_Model):
    rule_id: str
    domain: str
    rule_type: RuleType
    name: str = ""
    targets: tuple[TargetAddress, ...] = ()
    resolver_endpoint_id: str | None = None
    status: str = "COMPLETE"

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return normalize(value)


class RuleAssociation(_Model):
    rule_id: str
    vpc_id: str
    status: str = "COMPLETE"
    association_id: str = ""


class ResolverEndpoint(_Model):
    endpoint_id: str
    direction: Literal["INBOUND", "OUTBOUND"]
    vpc_id: str
    ips: tuple[str, ...] = ()
    status: str = "OPERATIONAL"
    name: str = ""
    # Do53 is DNS over port 53, what forwarding rules to the corporate servers and queries to inbound IPs
    # use; an endpoint with DoH only answers or forwards DNS over HTTPS (port 443) only.
    protocols: tuple[str, ...] = ("Do53",)

    @property
    def speaks_do53(self) -> bool:
        return "Do53" in self.protocols


class DnsRecord(_Model):
    name: str
    record_type: str
    values: tuple[str, ...] = ()
    # An alias record (AliasTarget.DNSName): resolved like a CNAME, answered under the record's own name.
    alias_target: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize(value.replace("\\052", "*"))


class PrivateZone(_Model):
    zone_id: str
    name: str
    vpc_ids: frozenset[str] = frozenset()
    records: tuple[DnsRecord, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize(value)


class EndpointDns(_Model):
    """An interface endpoint: its private DNS names (answered in its VPC when private DNS is on), its
    endpoint-specific names (public DNS), and the private IPs of its network interfaces."""

    endpoint_id: str
    vpc_id: str
    service_name: str = ""
    state: str = "available"
    private_dns_enabled: bool = False
    private_dns_names: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def serves_private_dns(self) -> bool:
        return self.private_dns_enabled and self.state.lower() not in _GONE_ENDPOINT


class Vpc(_Model):
    vpc_id: str
    cidr_blocks: tuple[str, ...]

    @property
    def resolver_ip(self) -> str:
        """The VPC's own Route 53 Resolver: the primary CIDR's base + 2."""
        return str(ipaddress.ip_network(self.cidr_blocks[0], strict=False).network_address + 2)


class DnsState(_Model):
    """The resolver-relevant state of one region."""

    region: str
    vpcs: tuple[Vpc, ...] = ()
    zones: tuple[PrivateZone, ...] = ()
    endpoints: tuple[EndpointDns, ...] = ()
    rules: tuple[ResolverRule, ...] = ()
    associations: tuple[RuleAssociation, ...] = ()
    resolver_endpoints: tuple[ResolverEndpoint, ...] = ()

    def vpc(self, vpc_id: str) -> Vpc | None:
        return next((v for v in self.vpcs if v.vpc_id == vpc_id), None)

    def resolver_endpoint(self, endpoint_id: str | None) -> ResolverEndpoint | None:
        return next((e for e in self.resolver_endpoints if e.endpoint_id == endpoint_id), None)

    def inbound_endpoint_at(self, ip: str) -> ResolverEndpoint | None:
        """The inbound endpoint that owns `ip`, if any."""
        return next(
            (e for e in self.resolver_endpoints if e.direction == "INBOUND" and ip in e.ips),
            None,
        )

    def vpc_with_resolver(self, ip: str) -> Vpc | None:
        """The VPC whose own resolver (CIDR base + 2) is `ip`, if any."""
        return next((v for v in self.vpcs if v.resolver_ip == ip), None)

    def rules_of(self, vpc_id: str) -> list[ResolverRule]:
        """Rules in effect for a VPC: associated (COMPLETE) and themselves in effect."""
        ids = {
            a.rule_id for a in self.associations if a.vpc_id == vpc_id and a.status in _APPLIED_ASSOCIATION
        }
        return [r for r in self.rules if r.rule_id in ids and r.status in _APPLIED_RULE]


class UpstreamAnswer(_Model):
    """What an outside DNS server said to a forwarded query."""

    status: UpstreamStatus
    addresses: tuple[str, ...] = ()
    cnames: tuple[tuple[str, str], ...] = ()
    detail: str = ""


# (target ip, target port, name) -> the server's answer. Given by callers that can reach the servers.
Upstream = Callable[[str, int, str], UpstreamAnswer]


class Step(_Model):
    """One decision on the way: which rule or zone won for which name in which VPC, and why."""

    vpc_id: str
    name: str
    action: StepAction
    decided_by: str
    why: str
    targets: tuple[str, ...] = ()
    via: str | None = None


class ResolutionPath(_Model):
    """Every step of one query, the final answer and why."""

    vpc_id: str
    name: str
    steps: tuple[Step, ...]
    outcome: Outcome
    addresses: tuple[str, ...] = ()
    cnames: tuple[tuple[str, str], ...] = Field(default=())
    answered_by: str = ""
    reason: str = ""

    @property
    def rcode(self) -> Literal["NOERROR", "NXDOMAIN", "SERVFAIL"]:
        """The DNS status a client sees (FORWARDED and PUBLIC are answers explain could not know)."""
        if self.outcome == "NXDOMAIN":
            return "NXDOMAIN"
        if self.outcome == "SERVFAIL":
            return "SERVFAIL"
        return "NOERROR"


# --- candidates --------------------------------------------------------------------------------------


class _Candidate(NamedTuple):
    domain: str
    precedence: int  # at equal specificity, lower wins
    kind: Literal["forward", "system", "zone", "endpoint"]
    label: str
    rule: ResolverRule | None = None
    zone: PrivateZone | None = None
    endpoint: EndpointDns | None = None
    key: str = ""

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (-labels(self.domain), self.precedence, self.key)


def _rule_candidate(rule: ResolverRule) -> _Candidate | None:
    if rule.rule_type == "FORWARD":
        kind: Literal["forward", "system"] = "forward"
        precedence = 0
    elif rule.rule_type in ("SYSTEM", "RECURSIVE"):
        kind, precedence = "system", 1
    else:  # DELEGATE rules act on NS answers from private zones: outside this model
        return None
    named = f" ({rule.name})" if rule.name else ""
    return _Candidate(
        rule.domain,
        precedence,
        kind,
        f"{rule.rule_type} rule {rule.rule_id}{named} for {_show(rule.domain)}",
        rule=rule,
        key=rule.rule_id,
    )


def _endpoint_zones(endpoint: EndpointDns) -> list[str]:
    """The managed zones AWS creates for an endpoint's private DNS names ("*.x" lives in zone x)."""
    zones = []
    for raw in endpoint.private_dns_names:
        name = normalize(raw)
        zones.append(name[2:] if name.startswith("*.") else name)
    return sorted(set(zones))


def _zone_candidates(state: DnsState, vpc_id: str, name: str) -> list[_Candidate]:
    found = [
        _Candidate(
            z.name, 2, "zone", f"private hosted zone {z.zone_id} {_show(z.name)}", zone=z, key=z.zone_id
        )
        for z in state.zones
        if vpc_id in z.vpc_ids and matches(name, z.name)
    ]
    for endpoint in state.endpoints:
        if endpoint.vpc_id != vpc_id or not endpoint.serves_private_dns:
            continue
        for zone in _endpoint_zones(endpoint):
            if matches(name, zone):
                found.append(
                    _Candidate(
                        zone,
                        3,
                        "endpoint",
                        f"private DNS of endpoint {endpoint.endpoint_id} ({_show(zone)})",
                        endpoint=endpoint,
                        key=endpoint.endpoint_id,
                    )
                )
    return found


def _show(domain: str) -> str:
    return '"."' if domain == "." else domain


def _why(winner: _Candidate, others: list[_Candidate], context: str) -> str:
    beaten = [c for c in others if c is not winner]
    if not beaten:
        return f"the only {context} that matches"
    parts = []
    for other in beaten:
        if labels(other.domain) < labels(winner.domain):
            parts.append(f"more specific than {_show(other.domain)} ({other.label})")
        else:
            parts.append(
                f"as specific as {other.label}; at equal specificity a {_RANK[winner.kind]} outranks a "
                f"{_RANK[other.kind]}"
            )
    return "; ".join(parts)


_RANK = {
    "forward": "forwarding rule",
    "system": "system rule",
    "zone": "private hosted zone",
    "endpoint": "endpoint's private DNS zone",
}


# --- the walk ----------------------------------------------------------------------------------------


class _End(NamedTuple):
    outcome: Outcome
    addresses: tuple[str, ...]
    answered_by: str
    reason: str


class _Walk:
    def __init__(self, state: DnsState, upstream: Upstream | None, max_cnames: int, max_hops: int) -> None:
        self.state = state
        self.upstream = upstream
        self.max_cnames = max_cnames
        self.max_hops = max_hops
        self.steps: list[Step] = []
        self.cnames: list[tuple[str, str]] = []

    def step(
        self,
        vpc_id: str,
        name: str,
        action: StepAction,
        decided_by: str,
        why: str,
        targets: tuple[str, ...] = (),
        via: str | None = None,
    ) -> None:
        self.steps.append(
            Step(
                vpc_id=vpc_id,
                name=name,
                action=action,
                decided_by=decided_by,
                why=why,
                targets=targets,
                via=via,
            )
        )

    # A query for `name` asked in `vpc_id`.
    def resolve(self, vpc_id: str, name: str, hops: int, cnames: int) -> _End:
        if self.state.vpc(vpc_id) is None:
            self.step(vpc_id, name, "error", "nothing", f"{vpc_id} is not a VPC of {self.state.region}")
            return _End("SERVFAIL", (), "nothing", f"{vpc_id} is not a VPC of {self.state.region}")
        rules = [c for c in (_rule_candidate(r) for r in self.state.rules_of(vpc_id)) if c is not None]
        candidates = [c for c in rules if matches(name, c.domain)] + _zone_candidates(
            self.state, vpc_id, name
        )
        if not candidates:
            self.step(
                vpc_id,
                name,
                "match",
                "Route 53 Resolver (no rule or zone)",
                "no rule, private hosted zone or endpoint private DNS of this VPC matches: Route 53 resolves it",
            )
            return self.public(vpc_id, name)
        candidates.sort(key=lambda c: c.sort_key)
        winner = candidates[0]
        self.step(vpc_id, name, "match", winner.label, _why(winner, candidates, "rule or zone"))
        if winner.kind == "forward" and winner.rule is not None:
            return self.forward(vpc_id, name, winner.rule, hops, cnames)
        if winner.kind == "system":
            return self.route53(vpc_id, name, hops, cnames)
        return self.zone(vpc_id, name, winner, hops, cnames)

    # Route 53's own resolution for a VPC: its most specific zone, else public DNS.
    def route53(self, vpc_id: str, name: str, hops: int, cnames: int) -> _End:
        zones = sorted(_zone_candidates(self.state, vpc_id, name), key=lambda c: c.sort_key)
        if not zones:
            return self.public(vpc_id, name)
        winner = zones[0]
        self.step(vpc_id, name, "zone", winner.label, "Route 53 resolution: " + _why(winner, zones, "zone"))
        return self.zone(vpc_id, name, winner, hops, cnames)

    def zone(self, vpc_id: str, name: str, zone: _Candidate, hops: int, cnames: int) -> _End:
        if zone.endpoint is not None:
            endpoint = zone.endpoint
            names = {normalize(n) for n in endpoint.private_dns_names}
            wildcard = f"*.{zone.domain}" in names and name != zone.domain
            if name in names or wildcard:
                if not endpoint.ips:
                    return _End(
                        "NODATA", (), zone.label, f"{endpoint.endpoint_id} has no network interface IPs"
                    )
                return _End(
                    "ANSWER", endpoint.ips, zone.label, f"the endpoint's network interface IPs in {vpc_id}"
                )
            return _End(
                "NXDOMAIN",
                (),
                zone.label,
                f"{name} is inside the endpoint's zone {zone.domain} but has no record",
            )
        assert zone.zone is not None
        records = [r for r in zone.zone.records if r.name == name]
        source = "record"
        if not records and name != zone.zone.name:
            # RFC 4592, simplified: a wildcard answers names that have no records of their own.
            parent = name.split(".", 1)[1] if "." in name else ""
            records = [r for r in zone.zone.records if r.name == f"*.{parent}"]
            source = "wildcard record"
        for record in records:
            if record.record_type == "CNAME" and record.values:
                return self.follow(
                    vpc_id, name, normalize(record.values[0]), zone.label, "CNAME", hops, cnames
                )
            if record.record_type == "A" and record.alias_target:
                return self.follow(
                    vpc_id, name, normalize(record.alias_target), zone.label, "alias", hops, cnames
                )
        addresses = tuple(v for r in records if r.record_type == "A" for v in r.values)
        if addresses:
            return _End("ANSWER", addresses, zone.label, f"A {source} in the zone")
        if records:
            kinds = ", ".join(sorted({r.record_type for r in records}))
            return _End("NODATA", (), zone.label, f"{name} has {kinds} records but no A record")
        return _End(
            "NXDOMAIN",
            (),
            zone.label,
            f"the zone {zone.domain} has no record for {name}; Resolver answers NXDOMAIN and does not ask "
            "public DNS",
        )

    def follow(
        self, vpc_id: str, name: str, target: str, label: str, kind: str, hops: int, cnames: int
    ) -> _End:
        self.cnames.append((name, target))
        seen = {n for pair in self.cnames[:-1] for n in pair}
        self.step(vpc_id, name, "cname", label, f"{kind} {name} -> {target}: resolve {target} from {vpc_id}")
        if target in seen or cnames <= 0:
            why = "a CNAME loop" if target in seen else f"more than {self.max_cnames} CNAMEs in a row"
            self.step(vpc_id, target, "error", label, why)
            return _End("SERVFAIL", (), label, f"{why}: Resolver gives up")
        return self.resolve(vpc_id, target, hops, cnames - 1)

    def forward(self, vpc_id: str, name: str, rule: ResolverRule, hops: int, cnames: int) -> _End:
        outbound = self.state.resolver_endpoint(rule.resolver_endpoint_id)
        label = f"rule {rule.rule_id}"
        if outbound is None or outbound.direction != "OUTBOUND":
            why = f"the rule's outbound endpoint {rule.resolver_endpoint_id} does not exist"
            self.step(vpc_id, name, "error", label, why)
            return _End("SERVFAIL", (), label, why)
        if not outbound.speaks_do53:
            why = (
                f"the rule's outbound endpoint {outbound.endpoint_id} has protocols "
                f"{', '.join(outbound.protocols)}, not Do53: it forwards nothing to DNS servers on port 53"
            )
            self.step(vpc_id, name, "error", label, why)
            return _End("SERVFAIL", (), label, why)
        if not rule.targets:
            self.step(vpc_id, name, "error", label, "the rule has no target IPs")
            return _End("SERVFAIL", (), label, "the rule has no target IPs")
        targets = tuple(str(t) for t in rule.targets)
        failures: list[str] = []
        for target in rule.targets:
            inbound = self.state.inbound_endpoint_at(target.ip) if target.port == 53 else None
            if inbound is not None and not inbound.speaks_do53:
                self.step(
                    vpc_id,
                    name,
                    "upstream",
                    f"{target}",
                    f"inbound endpoint {inbound.endpoint_id} has protocols {', '.join(inbound.protocols)}, "
                    "not Do53: it refuses DNS on port 53",
                    targets=targets,
                    via=outbound.endpoint_id,
                )
                failures.append(f"{target} REFUSED")
                continue
            internal = self.internal_target(target)
            if internal is not None:
                next_vpc, what = internal
                self.step(
                    vpc_id,
                    name,
                    "forward",
                    f"{label} via {outbound.endpoint_id}",
                    f"forwarded to {target} via {outbound.endpoint_id}: {target.ip} is {what}",
                    targets=targets,
                    via=outbound.endpoint_id,
                )
                if hops <= 0:
                    why = f"more than {self.max_hops} forwarding hops between VPCs (a forwarding loop?)"
                    self.step(next_vpc, name, "error", what, why)
                    return _End("SERVFAIL", (), what, why)
                self.step(
                    next_vpc,
                    name,
                    "inbound",
                    what,
                    f"resolution continues as if asked in {next_vpc}, with its zones and rules",
                )
                return self.resolve(next_vpc, name, hops - 1, cnames)
            if self.upstream is None:
                self.step(
                    vpc_id,
                    name,
                    "forward",
                    f"{label} via {outbound.endpoint_id}",
                    f"forwarded to {target} via {outbound.endpoint_id}: the answer is whatever that server says",
                    targets=targets,
                    via=outbound.endpoint_id,
                )
                return _End(
                    "FORWARDED",
                    (),
                    f"{target}",
                    f"forwarded to {', '.join(targets)} via {outbound.endpoint_id}",
                )
            answer = self.upstream(target.ip, target.port, name)
            self.step(
                vpc_id,
                name,
                "upstream",
                f"{target}",
                f"forwarded via {outbound.endpoint_id}: {answer.status}"
                + (f" ({answer.detail})" if answer.detail else ""),
                targets=targets,
                via=outbound.endpoint_id,
            )
            if answer.status in ("NOERROR", "NXDOMAIN"):
                self.cnames.extend(answer.cnames)
                if answer.status == "NXDOMAIN":
                    return _End("NXDOMAIN", (), str(target), f"{target} answered NXDOMAIN")
                if not answer.addresses:
                    return _End("NODATA", (), str(target), f"{target} answered without an A record")
                return _End("ANSWER", answer.addresses, str(target), f"answered by {target}")
            failures.append(f"{target} {answer.status}")
        why = "no target answered (" + ", ".join(failures) + ")"
        return _End("SERVFAIL", (), label, why)

    def internal_target(self, target: TargetAddress) -> tuple[str, str] | None:
        """(VPC, description) when the target is a Route 53 Resolver itself: an inbound endpoint IP or a
        VPC's own resolver address; None for an outside server."""
        if target.port != 53:
            return None
        inbound = self.state.inbound_endpoint_at(target.ip)
        if inbound is not None:
            return inbound.vpc_id, f"inbound endpoint {inbound.endpoint_id}"
        vpc = self.state.vpc_with_resolver(target.ip)
        if vpc is not None:
            return vpc.vpc_id, f"the Route 53 Resolver of {vpc.vpc_id}"
        return None

    def public(self, vpc_id: str, name: str) -> _End:
        for endpoint in self.state.endpoints:
            if name in {normalize(n) for n in endpoint.dns_names} and endpoint.state not in _GONE_ENDPOINT:
                label = f"endpoint-specific name of {endpoint.endpoint_id} (public DNS)"
                self.step(
                    vpc_id, name, "public", label, "AWS publishes endpoint-specific names in public DNS"
                )
                if not endpoint.ips:
                    return _End("NODATA", (), label, f"{endpoint.endpoint_id} has no network interface IPs")
                return _End("ANSWER", endpoint.ips, label, "the endpoint's network interface IPs")
        self.step(
            vpc_id,
            name,
            "public",
            "public DNS",
            "not a private name of this VPC: Route 53 asks public DNS (explain does not query the internet)",
        )
        return _End("PUBLIC", (), "public DNS", f"{name} is left to public DNS")


def explain(
    state: DnsState,
    vpc_id: str,
    name: str,
    *,
    upstream: Upstream | None = None,
    max_cnames: int = MAX_CNAMES,
    max_hops: int = MAX_HOPS,
) -> ResolutionPath:
    """The steps a query for `name` takes from `vpc_id`, as that VPC's Route 53 Resolver decides them."""
    qname = normalize(name)
    walk = _Walk(state, upstream, max_cnames, max_hops)
    end = walk.resolve(vpc_id, qname, max_hops, max_cnames)
    return ResolutionPath(
        vpc_id=vpc_id,
        name=qname,
        steps=tuple(walk.steps),
        outcome=end.outcome,
        addresses=end.addresses,
        cnames=tuple(walk.cnames),
        answered_by=end.answered_by,
        reason=end.reason,
    )
