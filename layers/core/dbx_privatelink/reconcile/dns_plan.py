"""What the DNS branch would do (for `plan`), read-only: the same decisions the DNS steps take (reconcile/dns.py
and reconcile/zones.py), over the same reads, without the writes. A resource that does not exist yet stands
in as NEW in the decisions that follow it (a new endpoint's rules, a new rule's associations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.errors import PreflightFailedError
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult, ResolverEndpointState
from dbx_privatelink.reconcile.dns import (
    association_vpcs,
    decide_association,
    decide_group,
    endpoint_repairs,
    endpoint_token,
    find_endpoint,
    find_rule,
    inbound_clash,
    inbound_ips_by_vpc,
    rule_state,
    rule_token,
    wanted_endpoints,
    with_egress,
)
from dbx_privatelink.reconcile.dns_rules import rule_drift, wanted_rules_now
from dbx_privatelink.reconcile.shared import group_name
from dbx_privatelink.reconcile.zone_checks import listed_zones
from dbx_privatelink.reconcile.zones import zone_associations_to_make

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import VpcInfo
    from dbx_privatelink.aws.resolver_types import ResolverRuleInfo, RuleAssociationInfo
    from dbx_privatelink.models.dns import ResolverRuleState
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps

NEW = "(new)"
# Every mutating call the DNS steps can make, as the decisions name them.
DNS_CALLS = frozenset(
    {
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
        "CreateResolverEndpoint",
        "TagResource",
        "AssociateResolverEndpointIpAddress",
        "UpdateResolverEndpoint",
        "CreateResolverRule",
        "UpdateResolverRule",
        "AssociateResolverRule",
        "AssociateVPCWithHostedZone",
    }
)


class PlannedChange(NamedTuple):
    """One resource of the DNS branch: what apply would do to it (keep, create, change, adopt; error: the
    step would stop there; wait: it waits until AWS is done with it), and the mutating calls that takes."""

    kind: str
    name: str
    action: str
    resource_id: str = NEW
    state: str = ""
    detail: str = ""
    calls: tuple[str, ...] = ()


def _vpcs(deps: Deps, region: str, vpc_ids: set[str]) -> dict[str, VpcInfo]:
    ec2 = deps.ec2(region)
    found = {v: ec2.get_vpc(v) for v in sorted(vpc_ids)}
    return {v: info for v, info in found.items() if info is not None}


def _endpoints(spec: WorkspaceSpec, deps: Deps) -> tuple[list[PlannedChange], ResolverEndpointsResult]:
    owner, resolver = deps.settings.owner_tag, deps.resolver(spec.region)
    wanted = wanted_endpoints(spec)
    vpcs = _vpcs(deps, spec.region, {w.vpc_id for w in wanted})
    wanted = with_egress(spec, wanted, vpcs)
    items: list[PlannedChange] = []
    states: list[ResolverEndpointState] = []
    for w in wanted:
        if w.vpc_id not in vpcs:
            continue  # preflight names the VPC
        group_id = w.security_group_id or NEW
        if not w.security_group_id:
            group = resolver.find_security_group(w.vpc_id, group_name(owner, w.role))
            decision = decide_group(w, vpcs[w.vpc_id], group, owner)
            group_id = group.group_id if group else NEW
            rules = [f"{r.direction} {r.protocol} 53 {r.cidr}" for r in decision.missing]
            gone = [f"{r.direction} {r.protocol} {r.from_port or 'all'} {r.cidr}" for r in decision.extra]
            detail = "; ".join(
                part
                for part in (
                    decision.conflict,
                    f"add {', '.join(rules)}" if rules else "",
                    f"remove {', '.join(gone)}" if gone else "",
                )
                if part
            )
            items.append(
                PlannedChange(
                    "resolver security group",
                    f"{w.role} in {w.vpc_id}",
                    decision.action,
                    group_id,
                    detail=detail,
                    calls=tuple(decision.calls()),
                )
            )
        found = find_endpoint(
            resolver.list_endpoints(vpc_id=w.vpc_id, direction=w.direction),
            resolver.tags,
            w,
            owner,
            endpoint_token(owner, w),
        )
        if found is None:
            subnets = ", ".join(w.subnet_ids)
            items.append(
                PlannedChange(
                    "resolver endpoint",
                    f"{w.role} in {w.vpc_id}",
                    "create",
                    detail=f"{w.direction}, one IP in each of {subnets}",
                    calls=("CreateResolverEndpoint",),
                )
            )
            ips: list[str] = []
            endpoint_id, status = NEW, ""
        else:
            info, how = found
            addresses = resolver.endpoint_ips(info.resolver_endpoint_id)
            repairs = endpoint_repairs(w, info, {ip.subnet_id for ip in addresses})
            calls = (["TagResource"] if how == "adopted" else []) + repairs.calls()
            action = "adopt" if how == "adopted" else ("change" if calls else "keep")
            detail = ", ".join(
                x
                for x in (
                    "made with this stack's request id: gets its tags" if how == "adopted" else "",
                    f"add an IP in {', '.join(repairs.missing_subnets)}" if repairs.missing_subnets else "",
                    "speak Do53 again" if repairs.add_do53 else "",
                )
                if x
            )
            items.append(
                PlannedChange(
                    "resolver endpoint",
                    f"{w.role} in {w.vpc_id}",
                    action,
                    info.resolver_endpoint_id,
                    info.status,
                    detail,
                    tuple(calls),
                )
            )
            ips = sorted(ip.ip for ip in addresses)
            endpoint_id, status = info.resolver_endpoint_id, info.status
        states.append(
            ResolverEndpointState(
                role=w.role,
                resolver_endpoint_id=endpoint_id,
                vpc_id=w.vpc_id,
                direction="INBOUND" if w.direction == "INBOUND" else "OUTBOUND",
                status=status,
                security_group_id=group_id,
                ips=ips,
            )
        )
    by_role = {s.role: s for s in states if s.role != "peered-outbound"}
    return items, ResolverEndpointsResult(
        outbound=by_role.get("outbound"),
        inbound=by_role.get("inbound"),
        peered=[s for s in states if s.role == "peered-outbound"],
    )


def _rules(
    spec: WorkspaceSpec, deps: Deps, endpoints: ResolverEndpointsResult, existing: list[ResolverRuleInfo]
) -> tuple[list[PlannedChange], list[ResolverRuleState]]:
    owner, resolver = deps.settings.owner_tag, deps.resolver(spec.region)
    items: list[PlannedChange] = []
    states: list[ResolverRuleState] = []
    try:
        wanted = wanted_rules_now(spec, endpoints, deps)
    except PreflightFailedError:
        return items, states  # the DNS VPC is gone: preflight names it
    for w in wanted:
        found = find_rule(existing, resolver.tags, w, owner, rule_token(owner, w))
        targets = ", ".join(f"{t.ip}:{t.port}" for t in w.targets) or "the new endpoint's IPs"
        what = f"{w.rule_type} {w.domain!r}" + (f" to {targets}" if w.rule_type == "FORWARD" else "")
        name = f"{w.role} {w.domain} in {w.scope_vpc_id}"
        if found is None:
            items.append(
                PlannedChange("resolver rule", name, "create", detail=what, calls=("CreateResolverRule",))
            )
            rule_id = NEW
        else:
            info, how = found
            drift = rule_drift(w, info)
            update = bool(drift and w.endpoint_id)
            calls = (["TagResource"] if how == "adopted" else []) + (["UpdateResolverRule"] if update else [])
            action = "adopt" if how == "adopted" else ("change" if update else "keep")
            detail = what + (f" (it {drift})" if update else "")
            items.append(
                PlannedChange(
                    "resolver rule", name, action, info.resolver_rule_id, info.status, detail, tuple(calls)
                )
            )
            rule_id = info.resolver_rule_id
        states.append(rule_state(w, rule_id))
    return items, states


def _associations(
    spec: WorkspaceSpec, deps: Deps, rules: list[ResolverRuleState], existing: list[ResolverRuleInfo]
) -> list[PlannedChange]:
    resolver = deps.resolver(spec.region)
    rules_by_id = {r.resolver_rule_id: r for r in existing}
    by_vpc: dict[str, list[RuleAssociationInfo]] = {}
    inbound_ips = inbound_ips_by_vpc(resolver) if rules else {}
    items: list[PlannedChange] = []
    for rule in rules:
        for vpc in association_vpcs(spec, rule):
            clash = inbound_clash(rule, vpc, inbound_ips)
            if clash:
                items.append(
                    PlannedChange(
                        "rule association", f"{rule.role} {rule.domain} with {vpc}", "error", detail=clash
                    )
                )
                continue
            if vpc not in by_vpc:
                by_vpc[vpc] = resolver.list_associations(vpc_id=vpc)
            decision = decide_association(rule.resolver_rule_id, rule.domain, vpc, by_vpc[vpc], rules_by_id)
            association = decision.association
            items.append(
                PlannedChange(
                    "rule association",
                    f"{rule.role} {rule.domain} with {vpc}",
                    "wait" if decision.busy else decision.action,
                    association.association_id if association else NEW,
                    association.status if association else "",
                    decision.busy
                    or decision.conflict
                    or ("of the new rule" if rule.resolver_rule_id == NEW else f"of {rule.resolver_rule_id}"),
                    # Busy: the step is retried until the old association is gone, then associates.
                    ("AssociateResolverRule",) if decision.busy else tuple(decision.calls()),
                )
            )
    return items


def _zones(spec: WorkspaceSpec, deps: Deps) -> list[PlannedChange]:
    items: list[PlannedChange] = []
    for where, wanted, zone in listed_zones(spec, deps):
        try:
            decided = zone_associations_to_make(where, wanted, zone, spec.region)
        except PreflightFailedError as exc:
            items.append(PlannedChange("zone association", wanted.hosted_zone_id, "error", detail=str(exc)))
            continue
        assert zone is not None
        items += [
            PlannedChange(
                "zone association",
                f"{zone.name} with {vpc_id}",
                "keep" if associated else "create",
                zone.zone_id,
                detail="" if associated else "then waits until the change is INSYNC",
                calls=() if associated else ("AssociateVPCWithHostedZone",),
            )
            for vpc_id, associated in decided
        ]
    return items


def plan_zones(spec: WorkspaceSpec, deps: Deps) -> list[PlannedChange]:
    """plan_dns's private hosted zones' associations alone."""
    return _zones(spec, deps) if spec.dns is not None else []


def plan_dns(spec: WorkspaceSpec, deps: Deps, *, zones: bool = True) -> list[PlannedChange]:
    """Every resource of the DNS branch in the order the steps reach them: the Resolver endpoints' groups
    and endpoints, the rules, their associations, the private hosted zones' associations (`zones=False`
    leaves those out)."""
    if spec.dns is None:
        return []
    endpoint_items, endpoints = _endpoints(spec, deps)
    existing = deps.resolver(spec.region).list_rules() if endpoints.all() else []
    rule_items, rules = _rules(spec, deps, endpoints, existing)
    return [
        *endpoint_items,
        *rule_items,
        *_associations(spec, deps, rules, existing),
        *(_zones(spec, deps) if zones else []),
    ]
