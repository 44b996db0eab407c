"""The `dns` section of the workspace spec: custom DNS with Route 53 Resolver, and the inbound pattern.

Custom DNS (seed 000): an outbound endpoint in the DNS VPC, a "." rule forwarding to the corporate DNS
servers, a rule keeping AWS names on Route 53, both associated with the data-plane VPC (and the front-end
VPC). Inbound pattern (seeds 003/004): an inbound endpoint in the VPC whose names only it can resolve, and
in each peered VPC an outbound endpoint with rules forwarding those names to the inbound IPs.
"""

import ipaddress
import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dbx_privatelink.rates import RESOLVER_ENDPOINTS_PER_REGION

# Route 53 Resolver quotas (per account and region, defaults): named when a spec would exceed them.
MAX_TARGET_IPS_PER_RULE = 6
MIN_ENDPOINT_IPS, MAX_ENDPOINT_IPS = 2, 6
# Rules for a spec that enters (DnsSection.input_problems), not for one an earlier version stored: the widest
# network an allowed_cidrs entry may be without dns.allow_wide_cidrs (wider ones, 0.0.0.0/0 most of all, open
# DNS to far more than the networks that query it), and the caps of dns.verify, whose names are resolved and
# reported twice in the run's state (VerifyDns's result and the run's summary), which Step Functions caps at
# 256 KiB beside the spec's own copies (spec.MAX_SPEC_BYTES).
WIDEST_ALLOWED_PREFIX = 16
MAX_VERIFY_NAMES = 50
MAX_EXPECTED_IPS = 8

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _domain(value: str) -> str:
    name = value.lower().rstrip(".")
    if value == ".":
        return "."
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(
            f"{value!r} is not an RFC 1123 domain name (labels of letters, digits and inner hyphens, "
            "at most 63 characters each, 253 in all)"
        )
    return name


DomainName = Annotated[str, AfterValidator(_domain)]
VpcId = Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]
ResolverSubnets = Annotated[list[SubnetId], Field(min_length=MIN_ENDPOINT_IPS, max_length=MAX_ENDPOINT_IPS)]


def target_ip_problem(ip: str) -> str | None:
    """Why `ip` cannot be a forwarding target, or None: only private unicast addresses are."""
    addr = ipaddress.ip_address(ip)
    if addr.is_unspecified:
        return f"{ip} is the unspecified address"
    if addr.is_loopback:
        return f"{ip} is a loopback address: Route 53 Resolver cannot forward to it"
    if addr.is_link_local:
        return f"{ip} is link-local (the instance metadata range): not a DNS server Route 53 can reach"
    if addr.is_multicast or addr.is_reserved:
        return f"{ip} is not a unicast address"
    if not addr.is_private:
        return f"{ip} is a public address: corporate DNS servers are reached privately"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CustomDns(_Model):
    """Send every name not answered in the VPC to the corporate DNS servers, keeping AWS names on Route 53."""

    dns_vpc_id: VpcId
    resolver_subnet_ids: ResolverSubnets
    # Created when absent (one per DNS VPC, shared by the workspaces behind it): no DNS in, DNS out to the
    # corporate servers only.
    resolver_security_group_id: SecurityGroupId | None = None
    # No longer used (an outbound endpoint takes no DNS in): accepted so stored specs stay valid, and
    # preflight says to remove it.
    allowed_cidrs: list[ipaddress.IPv4Network] = []
    corporate_dns_ips: Annotated[list[ipaddress.IPv4Address], Field(min_length=1)]
    # The data-plane VPC is always associated; add the front-end/transit VPC and others here.
    associate_vpc_ids: list[VpcId] = []
    # How AWS names stay on Route 53: a SYSTEM rule (default), or the seed's variant, a FORWARD rule to the
    # DNS VPC's own resolver (its CIDR base + 2, computed).
    aws_names: Literal["system-rule", "forward-to-dns-vpc-resolver"] = "system-rule"
    aws_domains: list[DomainName] = Field(default_factory=lambda: ["amazonaws.com"])

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if not self.aws_domains:
            raise ValueError(
                'aws_domains: a "." rule without a rule keeping AWS names on Route 53 sends amazonaws.com to '
                "the corporate servers and breaks S3, STS and Kinesis: keep at least amazonaws.com"
            )
        if len(self.corporate_dns_ips) > MAX_TARGET_IPS_PER_RULE:
            raise ValueError(
                f"corporate_dns_ips: {len(self.corporate_dns_ips)} targets; a Route 53 Resolver rule takes at "
                f"most {MAX_TARGET_IPS_PER_RULE} (quota: target IP addresses per rule)"
            )
        if len(set(self.resolver_subnet_ids)) != len(self.resolver_subnet_ids):
            raise ValueError("resolver_subnet_ids: list each subnet once (one endpoint IP per subnet)")
        return self


class PeeredVpc(_Model):
    """A VPC that must resolve the inbound domains: it gets an outbound endpoint and forwarding rules."""

    vpc_id: VpcId
    subnet_ids: ResolverSubnets
    security_group_id: SecurityGroupId | None = None


class InboundPattern(_Model):
    """Make names only one VPC can resolve (its private hosted zones) resolvable from peered VPCs and on-prem."""

    vpc_id: VpcId
    subnet_ids: ResolverSubnets
    security_group_id: SecurityGroupId | None = None
    allowed_cidrs: Annotated[list[ipaddress.IPv4Network], Field(min_length=1)]
    domains: Annotated[list[DomainName], Field(min_length=1)]
    peered_vpcs: list[PeeredVpc] = []

    @model_validator(mode="after")
    def _not_into_itself(self) -> Self:
        if "." in self.domains:
            raise ValueError('domains: forward specific names to the inbound endpoint, never "."')
        own = [p.vpc_id for p in self.peered_vpcs if p.vpc_id == self.vpc_id]
        if own:
            raise ValueError(
                f"peered_vpcs: {own[0]} holds the inbound endpoint; a rule targeting an inbound endpoint cannot "
                "be associated with that endpoint's own VPC (RSLVR-00804): remove it from peered_vpcs"
            )
        return self


class NameCheck(_Model):
    """A name that must resolve from inside the data-plane VPC, optionally to given addresses."""

    name: DomainName
    expect_ips: list[ipaddress.IPv4Address] = []


HostedZoneId = Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,32}$")]


class PrivateZoneAssociation(_Model):
    """A private hosted zone the workspace's names depend on, and the VPCs it must stay associated with
    (for example the zone of the inbound pattern's domains, or a privatelink zone of your own). The zone
    is never created, changed or deleted here: a VPC disassociated from it is associated again."""

    hosted_zone_id: HostedZoneId
    vpc_ids: Annotated[list[VpcId], Field(min_length=1)]

    @model_validator(mode="after")
    def _once(self) -> Self:
        if len(set(self.vpc_ids)) != len(self.vpc_ids):
            raise ValueError("vpc_ids: list each VPC once")
        return self


class DnsSection(_Model):
    custom_dns: CustomDns | None = None
    inbound: InboundPattern | None = None
    private_zones: list[PrivateZoneAssociation] = []
    # The workspace and relay names are always verified; list more names here.
    verify: list[NameCheck] = []
    # Forwarding targets must be private unless this is set (a public resolver on purpose).
    allow_public_targets: bool = False
    # allowed_cidrs entries wider than /16 (0.0.0.0/0 among them) are refused unless this is set.
    allow_wide_cidrs: bool = False

    @model_validator(mode="after")
    def _targets_and_quotas(self) -> Self:
        zone_ids = [z.hosted_zone_id for z in self.private_zones]
        repeated = sorted({z for z in zone_ids if zone_ids.count(z) > 1})
        if repeated:
            raise ValueError(
                f"private_zones: {', '.join(repeated)} listed more than once; list each zone once with all its "
                "vpc_ids"
            )
        if self.custom_dns and not self.allow_public_targets:
            for ip in self.custom_dns.corporate_dns_ips:
                problem = target_ip_problem(str(ip))
                if problem:
                    raise ValueError(
                        f"custom_dns.corporate_dns_ips: {problem}; use the corporate servers' private "
                        "addresses, or set dns.allow_public_targets: true"
                    )
        endpoints = (1 if self.custom_dns else 0) + (1 + len(self.inbound.peered_vpcs) if self.inbound else 0)
        if endpoints > RESOLVER_ENDPOINTS_PER_REGION:
            raise ValueError(
                f"this spec needs {endpoints} Route 53 Resolver endpoints; the quota 'endpoints per AWS Region' "
                f"is {RESOLVER_ENDPOINTS_PER_REGION} by default: raise it in Service Quotas or share one "
                "outbound endpoint"
            )
        return self

    def input_problems(self) -> list[str]:
        """What a new spec's dns section is refused for beyond the model (a stored one is still read): networks
        wider than /16 in allowed_cidrs without allow_wide_cidrs, and dns.verify over its caps."""
        problems = []
        lists = [
            ("custom_dns", self.custom_dns.allowed_cidrs if self.custom_dns else []),
            ("inbound", self.inbound.allowed_cidrs if self.inbound else []),
        ]
        for section, networks in lists if not self.allow_wide_cidrs else []:
            wide = [str(n) for n in networks if n.prefixlen < WIDEST_ALLOWED_PREFIX]
            if wide:
                what = (
                    "is no longer used (an outbound endpoint takes no DNS in): remove it, or list"
                    if section == "custom_dns"
                    else "admits DNS (TCP and UDP 53) to the inbound endpoint from these networks: list"
                )
                problems.append(
                    f"dns.{section}.allowed_cidrs: {', '.join(wide)} {'is' if len(wide) == 1 else 'are'} wider "
                    f"than /{WIDEST_ALLOWED_PREFIX}; the field {what} only the networks that query, each "
                    f"/{WIDEST_ALLOWED_PREFIX} or narrower, or set dns.allow_wide_cidrs: true to allow them on purpose"
                )
        why = "its answers are reported in the run's state, which Step Functions caps at 256 KiB"
        if len(self.verify) > MAX_VERIFY_NAMES:
            problems.append(
                f"dns.verify: {len(self.verify)} names; at most {MAX_VERIFY_NAMES} (each is resolved and {why}): "
                "keep the names that prove resolution works"
            )
        for index, check in enumerate(self.verify):
            if len(check.expect_ips) > MAX_EXPECTED_IPS:
                problems.append(
                    f"dns.verify[{index}].expect_ips: {len(check.expect_ips)} addresses; at most "
                    f"{MAX_EXPECTED_IPS} ({why}): list the addresses the name must resolve to"
                )
        return problems
