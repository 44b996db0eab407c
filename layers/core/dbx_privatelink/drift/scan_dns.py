"""The scan's DNS side (drift/scan.py): the Route 53 Resolver endpoints, rules and associations and the
private hosted zones the last run recorded, read now and compared with what the spec asks for, as the DNS steps
decide it. Loaded by scan.observe_dns for a workspace with a dns section only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbx_privatelink.drift.scan import Observation
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult, ResolverEndpointState
from dbx_privatelink.reconcile.dns_rules import rule_drift, wanted_rules_now
from dbx_privatelink.reconcile.zone_checks import association_states

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.reconcile.dns_rules import WantedRule
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps


def _recorded_endpoints(dns: dict[str, Any]) -> ResolverEndpointsResult | None:
    """The Resolver endpoints the last run left, in the shape the rules are derived from."""
    try:
        states = [ResolverEndpointState.model_validate(e) for e in dns.get("resolver_endpoints") or []]
    except ValueError:
        return None
    return ResolverEndpointsResult(
        outbound=next((e for e in states if e.role == "outbound"), None),
        inbound=next((e for e in states if e.role == "inbound"), None),
        peered=[e for e in states if e.role == "peered-outbound"],
    )


def _observe_resolver_endpoints(dns: dict[str, Any], resolver: ResolverClient) -> list[Observation]:
    endpoint_ids = [
        str(part["resolver_endpoint_id"])
        for part in [dns.get("outbound_endpoint"), dns.get("inbound"), *(dns.get("peered") or [])]
        if isinstance(part, dict) and part.get("resolver_endpoint_id")
    ]
    found: list[Observation] = []
    for endpoint_id in dict.fromkeys(endpoint_ids):
        endpoint = resolver.get_endpoint(endpoint_id)
        if endpoint is None:
            found.append(
                Observation(
                    "resolver endpoint",
                    endpoint_id,
                    "not found",
                    f"resolver endpoint {endpoint_id} does not exist",
                )
            )
            continue
        live, finding = f"{endpoint.status}, {'+'.join(endpoint.protocols)}", ""
        if endpoint.status not in ("OPERATIONAL", "UPDATING", "CREATING"):
            finding = f"resolver endpoint {endpoint_id} is {endpoint.status}: {endpoint.status_message}"
        elif not endpoint.speaks_do53:
            finding = (
                f"resolver endpoint {endpoint_id} has protocols {', '.join(endpoint.protocols)}: without Do53 "
                "it neither forwards to nor answers DNS on port 53"
            )
        found.append(Observation("resolver endpoint", endpoint_id, live, finding))
    return found


def _wanted_rules(spec: WorkspaceSpec, dns: dict[str, Any], deps: Deps) -> dict[str, WantedRule]:
    """The rules the spec asks for, as EnsureResolverRules derives them, by the recorded rule's id."""
    endpoints = _recorded_endpoints(dns)
    if endpoints is None:
        return {}
    if endpoints.inbound is not None:
        # Rules to the inbound endpoint follow its IPs as they are now (as EnsureResolverRules does).
        ips = sorted(
            ip.ip for ip in deps.resolver(spec.region).endpoint_ips(endpoints.inbound.resolver_endpoint_id)
        )
        endpoints = endpoints.model_copy(
            update={"inbound": endpoints.inbound.model_copy(update={"ips": ips})}
        )
    wanted = {
        (w.role, w.domain, w.rule_type, w.scope_vpc_id): w for w in wanted_rules_now(spec, endpoints, deps)
    }
    by_id: dict[str, WantedRule] = {}
    for rule in dns.get("rules") or []:
        if isinstance(rule, dict) and rule.get("resolver_rule_id"):
            key = tuple(str(rule.get(k)) for k in ("role", "domain", "rule_type", "scope_vpc_id"))
            if key in wanted:
                by_id[str(rule["resolver_rule_id"])] = wanted[key]
    return by_id


def _observe_rules(spec: WorkspaceSpec, dns: dict[str, Any], deps: Deps) -> list[Observation]:
    resolver = deps.resolver(spec.region)
    rule_ids = [dns.get("forward_rule_id"), *(dns.get("aws_rule_ids") or [])]
    rule_ids += [r for p in dns.get("peered") or [] if isinstance(p, dict) for r in p.get("rule_ids") or []]
    wanted = _wanted_rules(spec, dns, deps) if rule_ids else {}
    found: list[Observation] = []
    for rule_id in dict.fromkeys(str(r) for r in rule_ids if r):
        rule = resolver.get_rule(rule_id)
        if rule is None:
            found.append(
                Observation("resolver rule", rule_id, "not found", f"resolver rule {rule_id} does not exist")
            )
            continue
        targets = ", ".join(f"{t.ip}:{t.port}" for t in rule.target_ips)
        live, finding = rule.status + (f", to {targets}" if targets else ""), ""
        if rule.status not in ("COMPLETE", "UPDATING", "CREATING"):
            finding = f"resolver rule {rule_id} is {rule.status}: {rule.status_message}"
        elif rule_id in wanted and (drift := rule_drift(wanted[rule_id], rule)):
            finding = f"resolver rule {rule_id} ({rule.domain}) {drift}"
        found.append(Observation("resolver rule", rule_id, live, finding))
    return found


def _observe_associations(
    spec: WorkspaceSpec, dns: dict[str, Any], resolver: ResolverClient
) -> list[Observation]:
    recorded = [
        a
        for a in dns.get("associations") or []
        if isinstance(a, dict) and a.get("vpc_id") and a.get("resolver_rule_id")
    ]
    live: dict[str, dict[str, str]] = {}  # VPC -> rule -> association status
    for vpc_id in sorted({str(a["vpc_id"]) for a in recorded}):
        live[vpc_id] = {
            x.resolver_rule_id: x.status
            for x in resolver.list_associations(vpc_id=vpc_id)
            if x.status != "DELETING"
        }
    found: list[Observation] = []
    for a in recorded:
        vpc_id, rule_id = str(a["vpc_id"]), str(a["resolver_rule_id"])
        association_id = str(a.get("resolver_rule_association_id") or f"{rule_id}|{vpc_id}")
        status = live[vpc_id].get(rule_id)
        if status is None:
            domain = f" ({a['domain']})" if a.get("domain") else ""
            found.append(
                Observation(
                    "rule association",
                    association_id,
                    "not associated",
                    f"resolver rule {rule_id}{domain} is no longer associated with {vpc_id}",
                )
            )
        else:
            found.append(Observation("rule association", association_id, status))
    return found


def _observe_verification(dns: dict[str, Any]) -> list[Observation]:
    """The last run's DNS verification: each name and what it resolved to."""
    verification = dns.get("verification")
    if not isinstance(verification, dict):
        return []
    if verification.get("status") != "verified":
        return [
            Observation("dns verification", "", f"skipped: {verification.get('reason') or 'no reason given'}")
        ]
    found: list[Observation] = []
    for name in verification.get("names") or []:
        answers = ", ".join(name.get("answers") or []) or str(name.get("status", "?"))
        finding = ""
        if not name.get("ok"):
            expected = ", ".join(name.get("expected") or []) or "any address"
            finding = f"DNS verification: {name.get('name')} resolved to {answers}; expected {expected}"
        found.append(Observation("dns verification", str(name.get("name", "")), answers, finding))
    return found


def observe_recorded_dns(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[Observation]:
    """The resolver endpoints are OPERATIONAL and speak Do53, the rules exist and forward where the spec
    says (as EnsureResolverRules decides), each rule is associated with its VPCs, each private hosted zone
    of dns.private_zones with its VPCs, and the last verification's names resolved as expected."""
    dns = resources["dns"]
    resolver = deps.resolver(spec.region)
    found = [
        Observation(
            "zone association",
            f"{zone_id}|{vpc_id}",
            "associated" if associated else "not associated",
            finding,
        )
        for zone_id, vpc_id, associated, finding in association_states(spec, deps)
    ]
    found += _observe_resolver_endpoints(dns, resolver)
    found += _observe_rules(spec, dns, deps)
    found += _observe_associations(spec, dns, resolver)
    return found + _observe_verification(dns)
