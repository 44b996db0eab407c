"""VerifyDns: after the reconcile, the workspace's names are asked of the VPC's resolver and must answer
with the endpoints' addresses; a name that does not is explained from the live Route 53 Resolver state
(which rule decides it, where it was sent). Apart from reconcile.dns (which makes the Resolver resources)
so that only VerifyDns loads the resolution explainer (dns.resolution)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dbx_privatelink.dns.names import UNANSWERED, matches
from dbx_privatelink.errors import (
    DbxPrivateLinkError,
    DnsNotAnsweredError,
    DnsVerificationError,
    PreflightFailedError,
)
from dbx_privatelink.models.verify import NameVerification, VerifyDnsOutput

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.models.verify import VerifyDnsInput
    from dbx_privatelink.wiring import Deps

VERIFY_ATTEMPTS = 3  # tries per name within one VerifyDns invocation (the state machine retries it too)
VERIFY_MARGIN_S = 5.0  # wall seconds kept back from the Lambda's timeout after the last name's tries
NOT_ASKED = "NOT ASKED"  # the invocation's time ran out before this name's turn


def relay_private_dns_name(region: str) -> str:
    """The SCC relay's private DNS name when its endpoint service publishes none: Databricks' relay host
    tunnel.<region>.cloud.databricks.com with the privatelink label (unverified for every region)."""
    return f"tunnel.privatelink.{region}.cloud.databricks.com"


def answering_rule(resolver: ResolverClient, vpc_id: str, name: str) -> str:
    """Which associated rule decides `name` in the VPC (the most specific domain wins), in words."""
    associated = {
        a.resolver_rule_id for a in resolver.list_associations(vpc_id=vpc_id) if a.status != "DELETING"
    }
    rules = [r for r in resolver.list_rules() if r.resolver_rule_id in associated and matches(name, r.domain)]
    if not rules:
        return (
            f"no Resolver rule associated with {vpc_id} matches: the VPC's Route 53 Resolver answered "
            "(its private hosted zones, then public DNS)"
        )
    best = max(rules, key=lambda r: (0 if r.domain == "." else r.domain.count(".") + 1, len(r.domain)))
    if best.rule_type == "FORWARD":
        targets = ", ".join(f"{t.ip}:{t.port}" for t in best.target_ips)
        return f"rule {best.resolver_rule_id} (FORWARD {best.domain} to {targets})"
    return (
        f"rule {best.resolver_rule_id} ({best.rule_type} {best.domain}: the VPC's Route 53 Resolver answered)"
    )


def _explainer(deps: Deps, region: str, vpc_id: str) -> Callable[[str], str]:
    """How each name resolves in the VPC, from the explain logic over the region's live DNS state; when the
    state cannot be read, the Resolver rule associated with the VPC that matches the name."""
    try:
        state = deps.dns_state(region).read([vpc_id])
    except DbxPrivateLinkError:
        resolver = deps.resolver(region)
        return lambda name: answering_rule(resolver, vpc_id, name)

    from dbx_privatelink.dns.resolution import explain  # a failed name only (dns_state has loaded it)

    def describe(name: str) -> str:
        path = explain(state, vpc_id, name)
        words = path.answered_by or "nothing"
        return f"{words} ({path.reason})" if path.reason else words

    return describe


def _skip_reason(inp: VerifyDnsInput, deps: Deps) -> str | None:
    if deps.dns_query.redirected():
        return None  # the local stack: its DNS emulator stands in for the VPC's resolver
    subnet_ids = [s for s in deps.settings.verifier_subnet_ids.split(",") if s.strip()]
    if not subnet_ids:
        return (
            "VerifyDns runs outside any VPC (the stack's VerifierSubnetIds parameter is empty), so it cannot "
            f"reach the resolver of {inp.spec.network.vpc_id}; deploy with VerifierSubnetIds and "
            "VerifierSecurityGroupIds in the data-plane VPC to verify"
        )
    vpcs = {s.vpc_id for s in deps.ec2(inp.spec.region).get_subnets(subnet_ids)}
    if inp.spec.network.vpc_id not in vpcs:
        return (
            f"VerifyDns runs in {', '.join(sorted(vpcs)) or 'unknown subnets'}, not in the data-plane VPC "
            f"{inp.spec.network.vpc_id}: a VPC's resolver answers only inside its VPC"
        )
    return None


def _expectations(inp: VerifyDnsInput, deps: Deps) -> list[tuple[str, list[str]]]:
    """(name, expected addresses) for the workspace and relay names and every dns.verify name."""
    resolver = deps.resolver(inp.spec.region)
    by_role = {e.role: e for e in inp.endpoints}
    ips = resolver.vpc_endpoint_ips(
        [e.vpc_endpoint_id for e in inp.endpoints if e.role in ("workspace", "relay")]
    )
    wanted: list[tuple[str, list[str]]] = []
    if "workspace" in by_role:
        wanted.append((inp.private_dns_name, ips.get(by_role["workspace"].vpc_endpoint_id, [])))
    if "relay" in by_role:
        relay = by_role["relay"]
        published = resolver.service_private_dns_names([relay.service_name]).get(relay.service_name)
        wanted.append(
            (published or relay_private_dns_name(inp.spec.region), ips.get(relay.vpc_endpoint_id, []))
        )
    for check in inp.spec.dns.verify if inp.spec.dns else []:
        wanted.append((check.name, sorted(str(ip) for ip in check.expect_ips)))
    return wanted


def verify_dns(inp: VerifyDnsInput, deps: Deps) -> VerifyDnsOutput:
    """Resolve the workspace, relay and dns.verify names through the data-plane VPC's resolver."""
    spec = inp.spec
    reason = _skip_reason(inp, deps)
    if reason:
        return VerifyDnsOutput(status="skipped", reason=reason)
    vpc = deps.ec2(spec.region).get_vpc(spec.network.vpc_id)
    if vpc is None:
        raise PreflightFailedError(f"network.vpc_id: VPC {spec.network.vpc_id} does not exist")
    server = vpc.resolver_ip
    # One name may take every try's timeout: a name that could not finish before the Lambda's timeout is
    # not asked (reported unanswered, so the state machine asks again) rather than the step killed midway.
    per_name_s = VERIFY_ATTEMPTS * deps.dns_query.timeout_s + VERIFY_MARGIN_S
    results: list[NameVerification] = []
    for name, expected in _expectations(inp, deps):
        if deps.remaining_time_s() < per_name_s:
            results.append(NameVerification(name=name, expected=expected, status=NOT_ASKED, ok=False))
            continue
        answer = deps.dns_query.resolve(server, name, attempts=VERIFY_ATTEMPTS)
        ok = (
            answer.status == "NOERROR"
            and bool(answer.addresses)
            and (not expected or set(answer.addresses) <= set(expected))
        )
        results.append(
            NameVerification(
                name=name, expected=expected, answers=list(answer.addresses), status=answer.status, ok=ok
            )
        )
    failed = [r for r in results if not r.ok]
    if failed:
        explained = (
            _explainer(deps, spec.region, spec.network.vpc_id)
            if deps.remaining_time_s() >= VERIFY_MARGIN_S
            else lambda _name: "(not explained: the step's time ran out)"
        )
        lines = []
        for r in failed:
            if r.status == NOT_ASKED:
                lines.append(f"{r.name} was not asked: this invocation's time ran out before its turn")
                continue
            got = ", ".join(r.answers) if r.answers and r.status == "NOERROR" else r.status
            wanted = ", ".join(r.expected) if r.expected else "any address"
            lines.append(f"{r.name} resolved to {got}; expected {wanted}; answered by {explained(r.name)}")
        # No answer at all (timeouts, SERVFAIL) says nothing about the names yet: the state machine asks
        # again over a bounded window. A wrong answer, NXDOMAIN or no address is an answer: terminal.
        error = (
            DnsNotAnsweredError
            if all(r.status in UNANSWERED or r.status == NOT_ASKED for r in failed)
            else DnsVerificationError
        )
        raise error(
            f"DNS verification from inside {spec.network.vpc_id} (resolver {server}:53) failed:\n- "
            + "\n- ".join(lines)
        )
    return VerifyDnsOutput(status="verified", resolver=server, names=results)
