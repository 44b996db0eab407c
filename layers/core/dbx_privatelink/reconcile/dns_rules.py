"""The Route 53 Resolver rules a spec asks for, and how a live rule differs from one: what EnsureResolverRules
makes and repairs, plan shows and the drift scan compares. Apart from the steps (reconcile/dns.py), so that the
scan compares rules without loading the DNS steps' models."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.aws.resolver_types import TargetIp
from dbx_privatelink.errors import PreflightFailedError

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver_types import ResolverRuleInfo
    from dbx_privatelink.models.dns import RuleRole
    from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult
    from dbx_privatelink.models.dns_spec import SpecOfDns
    from dbx_privatelink.wiring import Deps


class WantedRule(NamedTuple):
    role: RuleRole
    domain: str
    rule_type: str
    scope_vpc_id: str
    endpoint_id: str | None
    targets: tuple[TargetIp, ...]


def wanted_rules(
    spec: SpecOfDns, endpoints: ResolverEndpointsResult, dns_vpc_resolver_ip: str | None
) -> list[WantedRule]:
    """The rules the spec asks for, given the endpoints (and the inbound endpoint's live IPs)."""
    dns = spec.dns
    rules: list[WantedRule] = []
    if dns is None:
        return rules
    if dns.custom_dns and endpoints.outbound:
        c, out = dns.custom_dns, endpoints.outbound
        corporate = tuple(TargetIp(ip=str(ip)) for ip in c.corporate_dns_ips)
        rules.append(
            WantedRule("forward-all", ".", "FORWARD", c.dns_vpc_id, out.resolver_endpoint_id, corporate)
        )
        for domain in c.aws_domains:
            if c.aws_names == "system-rule":
                rules.append(WantedRule("aws-names", domain, "SYSTEM", c.dns_vpc_id, None, ()))
            else:
                assert dns_vpc_resolver_ip is not None
                rules.append(
                    WantedRule(
                        "aws-names",
                        domain,
                        "FORWARD",
                        c.dns_vpc_id,
                        out.resolver_endpoint_id,
                        (TargetIp(ip=dns_vpc_resolver_ip),),
                    )
                )
    if dns.inbound and endpoints.inbound:
        inbound_targets = tuple(TargetIp(ip=ip) for ip in sorted(endpoints.inbound.ips))
        for peer in endpoints.peered:
            for domain in dns.inbound.domains:
                rules.append(
                    WantedRule(
                        "inbound-forward",
                        domain,
                        "FORWARD",
                        peer.vpc_id,
                        peer.resolver_endpoint_id,
                        inbound_targets,
                    )
                )
    return rules


def _targets_of(rule: ResolverRuleInfo) -> set[tuple[str, int]]:
    return {(t.ip, t.port) for t in rule.target_ips}


def _targets_text(targets: set[tuple[str, int]]) -> str:
    return ", ".join(f"{ip}:{port}" for ip, port in sorted(targets)) or "nothing"


def rule_drift(w: WantedRule, info: ResolverRuleInfo) -> str:
    """How a live rule differs from the wanted one in what EnsureResolverRules repairs (a FORWARD rule's
    targets and endpoint), in words; "" when it does not. The reconcile and the drift scan both ask this."""
    if w.rule_type != "FORWARD":
        return ""
    wanted = {(t.ip, t.port) for t in w.targets}
    if _targets_of(info) != wanted:
        return f"forwards to {_targets_text(_targets_of(info))}, not {_targets_text(wanted)}"
    if info.resolver_endpoint_id != w.endpoint_id:
        return f"forwards through {info.resolver_endpoint_id or 'no endpoint'}, not {w.endpoint_id}"
    return ""


def wanted_rules_now(spec: SpecOfDns, endpoints: ResolverEndpointsResult, deps: Deps) -> list[WantedRule]:
    """wanted_rules with the DNS VPC's resolver address read live when the spec forwards AWS names to it
    (`endpoints.inbound.ips` must be the inbound endpoint's live IPs)."""
    custom = spec.dns.custom_dns if spec.dns else None
    resolver_ip = None
    if custom and custom.aws_names == "forward-to-dns-vpc-resolver":
        vpc = deps.ec2(spec.region).get_vpc(custom.dns_vpc_id)
        if vpc is None:
            raise PreflightFailedError(f"dns.custom_dns: VPC {custom.dns_vpc_id} does not exist")
        resolver_ip = vpc.resolver_ip
    return wanted_rules(spec, endpoints, resolver_ip)
