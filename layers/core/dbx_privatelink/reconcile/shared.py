"""Which of a workspace's resources it shares with other workspaces, by natural key (ledger.SharedKey).

The keys are known from the spec and the endpoint plan before anything exists, so preflight can record the
workspace's references before any step finds or creates a shared resource; after the run, the ids the run
saw are recorded against the same keys.

Here too are the marks the application leaves on what it makes (its tag keys, its registration prefix, the
description of a rule a drift repair restores, the name of its Resolver groups): the reconcile writes them,
the drift scan, the decommission and the orphan sweep find resources by them, and none of those need load
the steps that write them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from dbx_privatelink.shared_key import SharedKey, resolver_key

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.models.dns_spec import SpecOfDns
    from dbx_privatelink.models.endpoints import EndpointPlan, EndpointState, Registration
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps

# The tag that marks a resource as the application's (its value: the stack's OWNER_TAG).
OWNER_TAG_KEY = "dbx-privatelink:owner"
# A human hands an existing endpoint over to a stack (endpoints.adopt) by tagging it adopt=<stack>: the
# stack's roles may put the ownership tag only on what they create, or on what is handed over this way.
ADOPT_TAG_KEY = "dbx-privatelink:adopt"
# What the resource is for: the endpoint's role, or the Resolver endpoint's or group's ("resolver-outbound").
ROLE_TAG_KEY = "dbx-privatelink:role"
# The VPC of the outbound endpoint a rule forwards through: two DNS VPCs never share a rule.
SCOPE_TAG_KEY = "dbx-privatelink:scope"
# The names the application gives its endpoint registrations (reconcile/endpoints.py, _register): what the
# decommission and the orphan sweep recognise as theirs.
REGISTRATION_PREFIX = "dbx-privatelink-"
# Every rule a drift repair adds to a customer's group carries this description: a decommission in delete
# mode finds exactly those (and no rule the customer made) and takes them away with the workspace.
RESTORED_RULE_DESCRIPTION = "dbx-privatelink: restored by drift repair"


def group_name(owner: str, role: str) -> str:
    """The name of the group this application makes for a role's Resolver endpoint in a VPC (one per VPC:
    group names are unique within a VPC, which makes concurrent creates converge)."""
    return f"dbx-privatelink-resolver-{role}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def endpoint_key(vpc_id: str, service_name: str) -> str:
    return f"{vpc_id}|{service_name}"


def spec_rules(spec: SpecOfDns) -> list[tuple[str, str, str, list[str]]]:
    """(scope VPC, domain, rule type, associated VPCs) of every rule the spec's dns section asks for."""
    dns = spec.dns
    if dns is None:
        return []
    rules: list[tuple[str, str, str, list[str]]] = []
    if dns.custom_dns:
        c = dns.custom_dns
        front_end = [spec.front_end.vpc_id] if spec.front_end else []
        vpcs = list(dict.fromkeys([spec.network.vpc_id, *front_end, *c.associate_vpc_ids]))
        rules.append((c.dns_vpc_id, ".", "FORWARD", vpcs))
        aws_type = "SYSTEM" if c.aws_names == "system-rule" else "FORWARD"
        rules += [(c.dns_vpc_id, domain, aws_type, vpcs) for domain in c.aws_domains]
    if dns.inbound:
        for peer in dns.inbound.peered_vpcs:
            rules += [(peer.vpc_id, domain, "FORWARD", [peer.vpc_id]) for domain in dns.inbound.domains]
    return rules


def rule_key(scope_vpc_id: str, domain: str, rule_type: str) -> str:
    return f"{scope_vpc_id}|{domain}|{rule_type}"


def shared_keys(spec: WorkspaceSpec, plans: list[EndpointPlan]) -> list[SharedKey]:
    """Every resource of the spec that another workspace may share: the VPC's endpoints and their
    registrations, the Resolver endpoints and the groups this application makes for them, the rules and
    their associations."""
    keys: list[SharedKey] = []
    for plan in plans:
        key = endpoint_key(plan.vpc_id, plan.service_name)
        keys.append(SharedKey("vpc-endpoint", key))
        if plan.is_databricks:
            keys.append(SharedKey("registration", key))
    dns = spec.dns
    if dns is not None:
        resolvers: list[tuple[str, str, str | None]] = []
        if dns.custom_dns:
            resolvers.append(
                ("outbound", dns.custom_dns.dns_vpc_id, dns.custom_dns.resolver_security_group_id)
            )
        if dns.inbound:
            resolvers.append(("inbound", dns.inbound.vpc_id, dns.inbound.security_group_id))
            resolvers += [("peered-outbound", p.vpc_id, p.security_group_id) for p in dns.inbound.peered_vpcs]
        for role, vpc_id, named_group in resolvers:
            keys.append(resolver_key("resolver-endpoint", vpc_id, role))
            if named_group is None:
                keys.append(resolver_key("resolver-security-group", vpc_id, role))
        for scope, domain, rule_type, vpcs in spec_rules(spec):
            rk = rule_key(scope, domain, rule_type)
            keys.append(SharedKey("resolver-rule", rk))
            keys += [SharedKey("rule-association", f"{rk}|{vpc}") for vpc in vpcs]
    return sorted(set(keys))


def observed_ids(
    endpoints: list[EndpointState], registrations: list[Registration], dns: dict[str, Any] | None
) -> dict[SharedKey, tuple[str, bool]]:
    """The id of each shared resource a run ended with, and whether the run created it."""
    found: dict[SharedKey, tuple[str, bool]] = {}
    by_role = {e.role: e for e in endpoints}
    for e in endpoints:
        found[SharedKey("vpc-endpoint", endpoint_key(e.vpc_id, e.service_name))] = (
            e.vpc_endpoint_id,
            e.action == "created",
        )
    for r in registrations:
        endpoint = by_role.get(r.role)
        if endpoint is not None:
            found[SharedKey("registration", endpoint_key(endpoint.vpc_id, endpoint.service_name))] = (
                r.vpc_endpoint_id,
                r.action == "created",
            )
    if not dns:
        return found
    created = set(dns.get("created") or [])
    for part in dns.get("resolver_endpoints") or []:
        role, vpc_id = part.get("role"), part.get("vpc_id")
        endpoint_id, group_id = part.get("resolver_endpoint_id"), part.get("security_group_id")
        if role and vpc_id and endpoint_id:
            found[resolver_key("resolver-endpoint", vpc_id, role)] = (endpoint_id, endpoint_id in created)
        if role and vpc_id and group_id and part.get("group_managed"):
            found[resolver_key("resolver-security-group", vpc_id, role)] = (group_id, group_id in created)
    for rule in dns.get("rules") or []:
        rk = rule_key(str(rule.get("scope_vpc_id")), str(rule.get("domain")), str(rule.get("rule_type")))
        rule_id = str(rule.get("resolver_rule_id", ""))
        if rule_id:
            found[SharedKey("resolver-rule", rk)] = (rule_id, rule_id in created)
    rules_by_id = {str(r.get("resolver_rule_id")): r for r in dns.get("rules") or []}
    for association in dns.get("associations") or []:
        rule = rules_by_id.get(str(association.get("resolver_rule_id")))
        association_id = str(association.get("resolver_rule_association_id", ""))
        if rule is None or not association_id:
            continue
        rk = rule_key(str(rule.get("scope_vpc_id")), str(rule.get("domain")), str(rule.get("rule_type")))
        found[SharedKey("rule-association", f"{rk}|{association.get('vpc_id')}")] = (
            association_id,
            association.get("action") == "created",
        )
    return found


# A step that makes Route 53 Resolver calls (reconcile/dns.py, decommission/dns.py) takes their slots on
# the stack's shared pace at once (one wait behind the queue); calls past them take slots of their own.
RESOLVER_STEP_MAX_WAIT_S = 240.0


def prepay_resolver_calls(deps: Deps, resolver: ResolverClient, count: int) -> None:
    """Take the slots of a step's `count` Resolver calls, waiting at most until shortly before the Lambda's
    timeout (RESOLVER_STEP_MAX_WAIT_S at most): past that AwsThrottledError and the state machine retries."""
    remaining = deps.remaining_time_s() / deps.settings.time_scale - 15.0
    resolver.reserve_calls(count, max(1.0, min(RESOLVER_STEP_MAX_WAIT_S, remaining)))
