"""Steps 9 and 10: custom DNS with Route 53 Resolver, and the verification of the names from inside the VPC.

Custom DNS (seed 000): an outbound endpoint in the DNS VPC, a "." rule forwarding to the corporate servers,
rules keeping AWS names on Route 53, all associated with the data-plane VPC (and the front-end VPC).
Inbound pattern (seeds 003/004): an inbound endpoint in the VPC whose names only it resolves, and per peered
VPC an outbound endpoint and forwarding rules targeting the inbound IPs.

Everything is find-first: endpoints and rules by the ownership tag (and role and scope), then by the
deterministic CreatorRequestId, then (forward rules) by domain, type and our endpoint; associations by
rule and VPC. A second run with the same spec makes no mutating call.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.aws.resolver_types import (
    GONE_ENDPOINT_STATUSES,
    INBOUND_TARGET_CODE,
    GroupRule,
    ResolverEndpointInfo,
    ResolverRuleInfo,
    SecurityGroupRef,
)
from dbx_privatelink.errors import (
    AwsAccessDeniedError,
    AwsRequestError,
    EndpointFailedError,
    EventualConsistencyError,
    PreflightFailedError,
    ResolverBusyError,
    ResolverNotOperationalTimeoutError,
    ResourceConflictError,
    SpecInvalidError,
)
from dbx_privatelink.models.dns import (
    DnsInbound,
    DnsOutboundEndpoint,
    DnsPeered,
    DnsResult,
    EnsureResolverRulesOutput,
    ResolverRuleState,
    RuleAssociationState,
)
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult, ResolverEndpointState
from dbx_privatelink.rates import RESOLVER_ENDPOINTS_PER_REGION
from dbx_privatelink.reconcile.dns_rules import WantedRule, rule_drift, wanted_rules_now
from dbx_privatelink.reconcile.polling import poll_until_settled, schedule_for
from dbx_privatelink.reconcile.shared import (
    ADOPT_TAG_KEY,
    OWNER_TAG_KEY,
    ROLE_TAG_KEY,
    SCOPE_TAG_KEY,
    group_name,
    prepay_resolver_calls,
    rule_key,
    spec_rules,
)
from dbx_privatelink.shared_key import SharedKey, resolver_key, vpc_and_role

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import VpcInfo
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.aws.resolver_types import RuleAssociationInfo
    from dbx_privatelink.models.base import Action, PollState
    from dbx_privatelink.models.dns_checks import CheckResolverEndpointsInput, CheckRuleAssociationsInput
    from dbx_privatelink.models.dns_endpoints import ResolverRole
    from dbx_privatelink.models.dns_spec import DnsSpecStep, SpecOfDns
    from dbx_privatelink.models.dns_steps import EnsureResolverRulesInput, EnsureRuleAssociationsInput
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps

if TYPE_CHECKING:
    from dbx_privatelink.reconcile.dns_plan import PlannedChange  # it imports this module

WAITING_ENDPOINT_STATUSES = {"CREATING", "UPDATING", "AUTO_RECOVERING"}
_INCARNATIONS = 10  # a CreatorRequestId stays spent after its resource is deleted by hand
MAX_RULES_PER_SECURITY_GROUP = 60  # inbound (and, separately, outbound) rules per group: VPC quota, default


def _token(*parts: str) -> str:
    return "dbxpl-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _slug(domain: str) -> str:
    return "root" if domain == "." else domain.replace(".", "-")


def _name(*parts: str) -> str:
    """A Resolver resource name: letters, digits, hyphens, at most 64 characters."""
    return "-".join(parts)[:64].rstrip("-")


# --- endpoints ---------------------------------------------------------------------------------------


class WantedEndpoint(NamedTuple):
    role: ResolverRole
    direction: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str | None
    # An inbound endpoint's group admits DNS from these (empty: the VPC's own CIDR). An outbound endpoint
    # takes no inbound DNS: its group lets DNS out to the rules' targets only (`egress_to`, set once the
    # targets are known), so its rules grow with the DNS servers, never with the workspaces behind it.
    allowed_cidrs: tuple[str, ...]
    label: str  # where it comes from in the spec, for messages
    egress_to: tuple[str, ...] | None = None


def wanted_endpoints(spec: SpecOfDns) -> list[WantedEndpoint]:
    """The Resolver endpoints the spec's dns section asks for."""
    dns = spec.dns
    wanted: list[WantedEndpoint] = []
    if dns is None:
        return wanted
    if dns.custom_dns:
        c = dns.custom_dns
        wanted.append(
            WantedEndpoint(
                "outbound",
                "OUTBOUND",
                c.dns_vpc_id,
                tuple(c.resolver_subnet_ids),
                c.resolver_security_group_id,
                (),
                "dns.custom_dns",
            )
        )
    if dns.inbound:
        i = dns.inbound
        wanted.append(
            WantedEndpoint(
                "inbound",
                "INBOUND",
                i.vpc_id,
                tuple(i.subnet_ids),
                i.security_group_id,
                tuple(str(n) for n in i.allowed_cidrs),
                "dns.inbound",
            )
        )
        for n, p in enumerate(i.peered_vpcs):
            wanted.append(
                WantedEndpoint(
                    "peered-outbound",
                    "OUTBOUND",
                    p.vpc_id,
                    tuple(p.subnet_ids),
                    p.security_group_id,
                    (),
                    f"dns.inbound.peered_vpcs[{n}]",
                )
            )
    return wanted


def with_egress(
    spec: SpecOfDns, wanted: list[WantedEndpoint], vpcs: dict[str, VpcInfo]
) -> list[WantedEndpoint]:
    """The outbound endpoints' DNS destinations: the corporate servers (and, in the seed's variant, the DNS
    VPC's own resolver) for custom DNS; the inbound endpoint's VPC for a peered VPC's endpoint."""
    dns = spec.dns
    result: list[WantedEndpoint] = []
    for w in wanted:
        targets: tuple[str, ...] | None = None
        if w.role == "outbound" and dns and dns.custom_dns:
            c = dns.custom_dns
            ips = [str(ip) for ip in c.corporate_dns_ips]
            if c.aws_names == "forward-to-dns-vpc-resolver" and c.dns_vpc_id in vpcs:
                ips.append(vpcs[c.dns_vpc_id].resolver_ip)
            targets = tuple(f"{ip}/32" for ip in dict.fromkeys(ips))
        elif w.role == "peered-outbound" and dns and dns.inbound and dns.inbound.vpc_id in vpcs:
            targets = (vpcs[dns.inbound.vpc_id].cidr_block,)
        result.append(w._replace(egress_to=targets) if targets is not None else w)
    return result


def resolver_problems(
    deps: Deps, region: str, wanted: list[WantedEndpoint]
) -> tuple[list[str], dict[str, VpcInfo]]:
    """Every reason the Resolver endpoints cannot be made as specified (read-only), and the VPCs read."""
    ec2 = deps.ec2(region)
    problems: list[str] = []
    vpcs: dict[str, VpcInfo] = {}
    for w in wanted:
        vpc = vpcs.get(w.vpc_id) or ec2.get_vpc(w.vpc_id)
        if vpc is None:
            problems.append(f"{w.label}: VPC {w.vpc_id} does not exist in {region}")
            continue
        vpcs[w.vpc_id] = vpc
        if not vpc.dns_support:
            problems.append(
                f"{w.label}: VPC {w.vpc_id} has enableDnsSupport off: Route 53 Resolver needs it on"
            )
        found = {s.subnet_id: s for s in ec2.get_subnets(list(w.subnet_ids))}
        zones: dict[str, str] = {}
        for sid in w.subnet_ids:
            subnet = found.get(sid)
            if subnet is None:
                problems.append(f"{w.label}: subnet {sid} does not exist")
            elif subnet.vpc_id != w.vpc_id:
                problems.append(f"{w.label}: subnet {sid} is in {subnet.vpc_id}, not in {w.vpc_id}")
            elif subnet.availability_zone in zones:
                problems.append(
                    f"{w.label}: subnets {zones[subnet.availability_zone]} and {sid} are both in "
                    f"{subnet.availability_zone}: one endpoint IP per subnet, each in its own Availability Zone"
                )
            else:
                zones[subnet.availability_zone] = sid
        if w.security_group_id:
            groups = ec2.get_security_groups([w.security_group_id])
            if not groups:
                problems.append(f"{w.label}: security group {w.security_group_id} does not exist")
            elif groups[0].vpc_id != w.vpc_id:
                problems.append(
                    f"{w.label}: security group {w.security_group_id} is in {groups[0].vpc_id}, not {w.vpc_id}"
                )
    return problems, vpcs


def dns_problems(spec: WorkspaceSpec, deps: Deps) -> list[str]:
    """Everything about the dns section that can fail before a change (preflight): the endpoints' VPCs,
    subnets and groups, and the quotas a fleet behind the same VPCs runs into (endpoints per region, rules
    of the inbound group), each with the number and the fix."""
    return dns_assessment(spec, deps).problems


class DnsAssessment(NamedTuple):
    problems: list[str]
    # plan_dns's items (zones left out); None when it stopped before (no endpoint wanted, a problem first).
    planned: list[PlannedChange] | None
    # The region's Resolver endpoints as listed, when the spec needs one that neither exists nor is held by
    # another workspace's reference (None otherwise): preflight counts the quota again from them under its
    # lock while it reserves that one (resolver_quota_held).
    listing: list[ResolverEndpointInfo] | None
    # The inbound endpoint whose own group (shared by the workspaces behind its VPC) this spec adds rules to
    # that neither the group nor another run's reservation holds, with its VPC (None otherwise): preflight
    # counts the group's rules again under its lock while it reserves them (group_rules_held).
    inbound_group: tuple[WantedEndpoint, VpcInfo] | None = None


def dns_assessment(spec: WorkspaceSpec, deps: Deps) -> DnsAssessment:
    """dns_problems, the plan_dns items (zones left out) it decided them from, and the endpoint listing
    preflight reserves new endpoints from."""
    wanted = wanted_endpoints(spec)
    if not wanted:
        return DnsAssessment([], None, None)
    planned: list[PlannedChange] | None = None
    problems, vpcs = resolver_problems(deps, spec.region, wanted)
    resolver = deps.resolver(spec.region)
    # The endpoint list, and the reads of the DNS steps' decisions (plan_dns below): endpoints, their tags and
    # IPs, rules, their tags, associations per VPC.
    prepay_resolver_calls(deps, resolver, 3 + 4 * len(wanted) + 2 * len(spec_rules(spec)))
    existing = [e for e in resolver.list_endpoints() if e.status not in GONE_ENDPOINT_STATUSES]
    quota_problem, adds = resolver_quota_problem(spec, deps, wanted, existing)
    if quota_problem:
        problems.append(quota_problem)
    listing = existing if adds else None
    if not problems:
        # What a DNS step would stop at on the live state (a group of our name that is not ours, another
        # rule of a domain associated with a VPC), decided as plan and the steps decide it.
        from dbx_privatelink.reconcile.dns_plan import plan_dns  # it imports this module

        planned = plan_dns(spec, deps, zones=False)
        problems += [i.detail for i in planned if i.action == "error"]
    inbound_group: tuple[WantedEndpoint, VpcInfo] | None = None
    for w in wanted:
        if w.security_group_id or w.vpc_id not in vpcs or w.direction != "INBOUND":
            continue
        group = resolver.find_security_group(w.vpc_id, group_name(deps.settings.owner_tag, w.role))
        problem, adds = group_rules_problem(spec.workspace_key, deps, w, vpcs[w.vpc_id], group)
        if problem:
            problems.append(problem)
        elif adds:
            inbound_group = (w, vpcs[w.vpc_id])
    return DnsAssessment(problems, planned, listing, inbound_group)


def reserved_group_rules(
    deps: Deps, w: WantedEndpoint, vpc: VpcInfo, workspace_key: str
) -> dict[str, set[GroupRule]]:
    """The DNS rules the other workspaces sharing the endpoint's own group want in it, by workspace: those
    the ledger names as its users, from their desired specs (preflight stores the spec, under the group's
    lock, before any step adds a rule). What their runs in progress are about to add, or added already."""
    if not deps.settings.table_name:
        return {}
    from pydantic import ValidationError

    from dbx_privatelink.models.dns_spec import DnsSpec  # the spec documents as the DNS steps read them

    record = deps.ledger.get(resolver_key("resolver-security-group", w.vpc_id, w.role))
    wanted: dict[str, set[GroupRule]] = {}
    for other in sorted(set(record.refs if record else ()) - {workspace_key}):
        desired = deps.store.get_desired(other)
        if desired is None:
            continue
        try:
            view = DnsSpec.model_validate(desired.spec)
        except ValidationError:
            continue  # a stored spec this version refuses (its own runs say so): the group's rules count it
        theirs = [
            x
            for x in wanted_endpoints(view)
            if (x.vpc_id, x.role) == (w.vpc_id, w.role) and not x.security_group_id
        ]
        wanted[other] = {r for x in theirs for r in wanted_group_rules(x, vpc)}
    return wanted


def group_rules_problem(
    workspace_key: str, deps: Deps, w: WantedEndpoint, vpc: VpcInfo, group: SecurityGroupRef | None
) -> tuple[str | None, bool]:
    """The quota of an inbound endpoint's own group, shared by the workspaces behind its VPC: the DNS rules it
    holds, those other workspaces' runs reserved and have not added yet, and this spec's, counted once each
    (a spec whose rules the group holds already adds none: it is never refused for what others reserved).
    Also whether this spec adds a rule that neither the group nor a reservation holds (preflight then counts
    again under the group's lock while it reserves them: group_rules_held)."""
    ours = set(wanted_group_rules(w, vpc))
    live = {r for r in group.ingress if r.is_dns} if group else set()
    if ours <= live:
        return None, False  # the group holds them already (a re-apply): this spec adds nothing to count
    others = reserved_group_rules(deps, w, vpc, workspace_key)
    pending = {r for rules in others.values() for r in rules} - live
    adds = bool(ours - live - pending)
    count = len(live | pending | ours) + (group.other_rules if group else 0)
    if count <= MAX_RULES_PER_SECURITY_GROUP:
        return None, adds
    reserving = sorted(k for k, rules in others.items() if rules - live)
    reserved = (
        f", {len(pending)} of them reserved by the runs in progress of {', '.join(reserving)}"
        if pending
        else ""
    )
    return (
        f"{w.label}.allowed_cidrs: the inbound endpoint's group {group.group_id if group else '(not made yet)'} "
        f"is shared by the workspaces behind {w.vpc_id} and would hold {count} rules{reserved} (TCP and UDP 53 "
        f"per network); the quota 'inbound rules per security group' is {MAX_RULES_PER_SECURITY_GROUP}: use "
        "wider, aggregated networks (adjacent CIDRs are merged), or name a group of your own in security_group_id"
    ), adds


@contextmanager
def group_rules_held(
    spec: SpecOfDns, deps: Deps, holder: str, inbound: tuple[WantedEndpoint, VpcInfo] | None
) -> Iterator[None]:
    """For preflight's reservation of the rules this spec adds to a shared inbound group (its desired spec,
    which the other workspaces' preflights read, and its reference to the group): the group's rules are
    counted again under the group's lock and the block runs while it is held, so that two runs that each fit
    the quota alone cannot together exceed it; over it, the PreflightFailedError is raised before the block,
    and nothing was changed. A spec whose rules the group or a reservation holds already takes no lock."""
    if inbound is None or not deps.settings.table_name:
        yield
        return
    w, vpc = inbound
    quota = f"security-group-rules#{w.vpc_id}|{w.role}"
    with deps.ledger.quota_lock(quota, holder, deps.clock, deps.pause):
        group = deps.resolver(spec.region).find_security_group(
            w.vpc_id, group_name(deps.settings.owner_tag, w.role)
        )
        problem, _ = group_rules_problem(spec.workspace_key, deps, w, vpc, group)
        if problem:
            raise PreflightFailedError(f"Preflight found 1 problem(s); nothing was changed:\n- {problem}")
        yield


def _endpoint_key(w: WantedEndpoint) -> SharedKey:
    """The endpoint in the ledger (reconcile/shared.py's shared_keys)."""
    return resolver_key("resolver-endpoint", w.vpc_id, w.role)


def held_endpoints(deps: Deps, listed: list[ResolverEndpointInfo]) -> dict[str, tuple[str, ...]]:
    """The Resolver endpoints this stack's workspaces refer to (the ledger: preflight writes a reference
    before any step creates the endpoint) that the listing lacks: reserved by a run in progress and not made
    yet, made since the listing, or deleted and to be made again; natural key -> the workspaces."""
    if not deps.settings.table_name:
        return {}
    made = {(e.vpc_id, e.name) for e in listed}
    held: dict[str, tuple[str, ...]] = {}
    for record in deps.ledger.list_shared():
        if record.kind != "resolver-endpoint" or not record.refs:
            continue
        vpc_id, role = vpc_and_role(record.key)
        if (vpc_id, _endpoint_name_of(role, vpc_id)) not in made:
            held[record.key] = record.refs
    return held


def resolver_quota_problem(
    spec: SpecOfDns, deps: Deps, wanted: list[WantedEndpoint], existing: list[ResolverEndpointInfo]
) -> tuple[str | None, int]:
    """The region's Resolver endpoint quota against what exists, what the stack's workspaces hold beyond it
    (held_endpoints), and what this spec adds (an endpoint it shares with another workspace counts once);
    and how many it adds to that count (its new endpoints no other workspace holds yet)."""
    new = [
        w
        for w in wanted
        if not any(
            e.vpc_id == w.vpc_id and e.direction == w.direction and e.name == _endpoint_name(w)
            for e in existing
        )
    ]
    if not new:
        return None, 0
    held = held_endpoints(deps, existing)
    new_keys = [_endpoint_key(w).key for w in new]
    others = {k: refs for k, refs in held.items() if k not in new_keys}
    adds = sum(1 for k in new_keys if not set(held.get(k, ())) - {spec.workspace_key})
    quota = deps.settings.resolver_endpoints_quota
    if len(existing) + len(others) + len(new) <= quota:
        return None, adds
    in_progress = (
        f" and this stack's workspaces hold {len(others)} more not made yet ("
        + "; ".join(f"{k} for {', '.join(refs)}" for k, refs in sorted(others.items()))
        + ")"
        if others
        else ""
    )
    return (
        f"dns: this spec needs {len(new)} new Route 53 Resolver endpoint(s) ({', '.join(w.label for w in new)}) "
        f"and {spec.region} has {len(existing)}{in_progress}: the quota 'endpoints per AWS Region' is {quota} "
        f"({RESOLVER_ENDPOINTS_PER_REGION} by default); raise it in Service Quotas (and the stack's "
        "ResolverEndpointsQuota parameter), or point the spec at a VPC whose endpoint this application "
        "already made (workspaces share them)"
    ), adds


@contextmanager
def resolver_quota_held(
    spec: SpecOfDns, deps: Deps, holder: str, listing: list[ResolverEndpointInfo] | None
) -> Iterator[None]:
    """For preflight's reservation (the ledger's references to the Resolver endpoints the spec adds): when
    the spec adds endpoints no other workspace holds yet (`listing`: the region's as listed), the quota is
    counted again under its lock and the block runs while it is held, so two runs that each fit the quota
    alone cannot together exceed it; over it, the PreflightFailedError is raised before the block, and
    nothing was changed. Under the lock only the ledger is read again: what a run reserved, made or recorded
    since the listing is in it. An endpoint another workspace holds already adds nothing: no lock."""
    if listing is None or not deps.settings.table_name:
        yield
        return
    with deps.ledger.quota_lock(f"route53resolver-endpoints#{spec.region}", holder, deps.clock, deps.pause):
        problem, _ = resolver_quota_problem(spec, deps, wanted_endpoints(spec), listing)
        if problem:
            raise PreflightFailedError(f"Preflight found 1 problem(s); nothing was changed:\n- {problem}")
        yield


def _validate(deps: Deps, region: str, wanted: list[WantedEndpoint]) -> dict[str, VpcInfo]:
    """Preflight checked this before any change; checked again here because a subnet or group can go
    between the two (then this step fails before its first mutating call)."""
    problems, vpcs = resolver_problems(deps, region, wanted)
    if problems:
        raise PreflightFailedError(
            "Route 53 Resolver endpoints cannot be created as specified; this step changed nothing:\n- "
            + "\n- ".join(problems)
        )
    return vpcs


def wanted_group_rules(w: WantedEndpoint, vpc: VpcInfo) -> list[GroupRule]:
    """The rules the endpoint's own group must hold: DNS in from the allowed networks (collapsed: adjacent
    and nested CIDRs become one rule), or DNS out to the targets."""
    rules: list[GroupRule] = []
    if w.direction == "INBOUND":
        networks = [ipaddress.IPv4Network(c) for c in (w.allowed_cidrs or (vpc.cidr_block,))]
        cidrs = [str(n) for n in ipaddress.collapse_addresses(networks)]
        rules += [
            GroupRule(direction="ingress", protocol=p, from_port=53, to_port=53, cidr=c)
            for c in cidrs
            for p in ("tcp", "udp")
        ]
    for c in w.egress_to or ():
        rules += [
            GroupRule(direction="egress", protocol=p, from_port=53, to_port=53, cidr=c)
            for p in ("tcp", "udp")
        ]
    return rules


class GroupDecision(NamedTuple):
    """What the endpoint's own group needs (plan and EnsureResolverEndpoints decide it here): made (when it
    does not exist), rules added and removed; or a stranger holds its name (`conflict`)."""

    create: bool
    missing: tuple[GroupRule, ...]
    extra: tuple[GroupRule, ...]
    conflict: str = ""

    @property
    def action(self) -> str:
        if self.conflict:
            return "error"
        return "create" if self.create else ("change" if self.missing or self.extra else "keep")

    def calls(self) -> list[str]:
        """The mutating EC2 calls that carry the decision out (one per verb and direction)."""
        made = ["CreateSecurityGroup"] if self.create else []
        for verb, rules in (("Authorize", self.missing), ("Revoke", self.extra)):
            made += [
                f"{verb}SecurityGroup{d.capitalize()}"
                for d in ("ingress", "egress")
                if any(r.direction == d for r in rules)
            ]
        return made


def decide_group(
    w: WantedEndpoint, vpc: VpcInfo, group: SecurityGroupRef | None, owner: str
) -> GroupDecision:
    """The changes the endpoint's own group needs to hold exactly what wanted_group_rules names (EC2 gives
    a new group one rule: all traffic out to anywhere). A group of our name that is not ours: `conflict`."""
    create = group is None
    if group is None:
        all_out = GroupRule(direction="egress", protocol="-1", from_port=None, to_port=None, cidr="0.0.0.0/0")
        group = SecurityGroupRef(
            group_id="",
            vpc_id=w.vpc_id,
            name=group_name(owner, w.role),
            tags={OWNER_TAG_KEY: owner},
            egress=(all_out,),
        )
    if group.tags.get(OWNER_TAG_KEY) != owner:
        return GroupDecision(
            False,
            (),
            (),
            conflict=f"{w.label}: security group {group.group_id} ({group.name}) in {w.vpc_id} is not tagged "
            f"{OWNER_TAG_KEY}={owner}: name the group in the spec or remove the stranger",
        )
    wanted = wanted_group_rules(w, vpc)
    have = set(group.ingress) | set(group.egress)
    missing = tuple(r for r in wanted if r not in have)
    # The inbound group serves every workspace of this owner behind the VPC: DNS from another workspace's
    # networks stays; what is not DNS goes. Outbound groups hold DNS to the targets and nothing else.
    keep_ingress = w.direction == "INBOUND"
    extra = [r for r in group.ingress if r not in wanted and not (keep_ingress and r.is_dns)]
    if w.egress_to is not None:
        extra += [r for r in group.egress if r not in wanted]
    return GroupDecision(create, missing, tuple(extra))


def _ensure_group(resolver: ResolverClient, w: WantedEndpoint, vpc: VpcInfo, owner: str) -> tuple[str, bool]:
    """The endpoint's security group: the spec's, or ours (find, or create: a lost race adopts the winner's)
    with exactly the rules wanted_group_rules names. Returns (group id, created by this call)."""
    if w.security_group_id:
        return w.security_group_id, False
    name = group_name(owner, w.role)
    group = resolver.find_security_group(w.vpc_id, name)
    created = False
    if group is None:
        group, created = resolver.create_security_group(
            w.vpc_id,
            name,
            f"Route 53 Resolver {w.role} endpoint: DNS (TCP and UDP 53) to or from the allowed networks only",
            {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: f"resolver-{w.role}", "Name": name},
        )
    decision = decide_group(w, vpc, group, owner)
    if decision.conflict:
        raise ResourceConflictError(decision.conflict)
    resolver.authorize(group.group_id, list(decision.missing))
    resolver.revoke(group.group_id, list(decision.extra))
    return group.group_id, created


def _ours(tags: dict[str, str], owner: str, role: str, scope: str | None = None) -> bool:
    return (
        tags.get(OWNER_TAG_KEY) == owner
        and tags.get(ROLE_TAG_KEY) == role
        and (scope is None or tags.get(SCOPE_TAG_KEY) == scope)
    )


def find_endpoint(
    candidates: list[ResolverEndpointInfo],
    tags_of: Callable[[str], dict[str, str]],
    w: WantedEndpoint,
    owner: str,
    token: str,
) -> tuple[ResolverEndpointInfo, Action] | None:
    """Which existing endpoint of the VPC and direction serves `w` (plan and the step decide it here): ours
    by tags ("found"), else one made with our CreatorRequestId ("adopted": it gets our tags)."""
    live = sorted(
        (e for e in candidates if e.status not in GONE_ENDPOINT_STATUSES),
        key=lambda e: e.resolver_endpoint_id,
    )
    for e in live:
        if _ours(tags_of(e.arn), owner, w.role):
            return e, "found"
    for e in live:
        if e.creator_request_id.startswith(token):
            return e, "adopted"
    return None


def endpoint_token(owner: str, w: WantedEndpoint) -> str:
    return _token(owner, "endpoint", w.role, w.vpc_id, w.direction)


class EndpointRepairs(NamedTuple):
    """What an existing endpoint lacks (drift): an IP in each of the spec's subnets, and Do53."""

    missing_subnets: tuple[str, ...]
    add_do53: bool

    def calls(self) -> list[str]:
        return ["AssociateResolverEndpointIpAddress"] * len(self.missing_subnets) + (
            ["UpdateResolverEndpoint"] if self.add_do53 else []
        )


def endpoint_repairs(w: WantedEndpoint, info: ResolverEndpointInfo, ip_subnets: set[str]) -> EndpointRepairs:
    """An IP someone removed is added again (IPs added elsewhere stay); a protocols change that dropped Do53
    gets it back beside what was chosen."""
    return EndpointRepairs(tuple(s for s in w.subnet_ids if s not in ip_subnets), not info.speaks_do53)


def _claim(resolver: ResolverClient, arn: str, tags: dict[str, str]) -> None:
    """Give an adopted Resolver resource the stack's tags. The roles may tag an existing resource only once a
    human handed it over (template.yaml): a refusal names the tag that does."""
    try:
        resolver.tag(arn, tags)
    except AwsAccessDeniedError as exc:
        raise AwsAccessDeniedError(
            f"{arn} would be adopted but is not handed over to this stack: tag it "
            f"{ADOPT_TAG_KEY}={tags[OWNER_TAG_KEY]} (aws route53resolver tag-resource --resource-arn {arn} "
            f"--tags Key={ADOPT_TAG_KEY},Value={tags[OWNER_TAG_KEY]}), or delete it ({exc})"
        ) from exc


def _find_endpoint(
    resolver: ResolverClient, w: WantedEndpoint, owner: str, token: str
) -> tuple[ResolverEndpointInfo, Action] | None:
    found = find_endpoint(
        resolver.list_endpoints(vpc_id=w.vpc_id, direction=w.direction), resolver.tags, w, owner, token
    )
    if found is not None and found[1] == "adopted":
        _claim(resolver, found[0].arn, {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: w.role})
    return found


def _endpoint_state(
    resolver: ResolverClient,
    w: WantedEndpoint,
    info: ResolverEndpointInfo,
    group: tuple[str, bool],
    action: Action,
) -> ResolverEndpointState:
    ips = sorted(ip.ip for ip in resolver.endpoint_ips(info.resolver_endpoint_id))
    group_id, group_created = group
    return ResolverEndpointState.model_validate(
        {
            "role": w.role,
            "resolver_endpoint_id": info.resolver_endpoint_id,
            "vpc_id": info.vpc_id or w.vpc_id,
            "direction": w.direction,
            "status": info.status,
            "security_group_id": (info.security_group_ids or (group_id,))[0],
            "ips": ips,
            "action": action,
            "group_managed": w.security_group_id is None,
            "group_created": group_created,
        }
    )


def _lock_holder(inp: DnsSpecStep) -> str:
    return inp.execution_name or f"{inp.spec.workspace_key}-unnamed"


def ensure_resolver_endpoints(inp: DnsSpecStep, deps: Deps) -> ResolverEndpointsResult:
    """Find or create the outbound endpoint (custom DNS), the inbound endpoint and the peered outbound ones.
    They are shared by every workspace of the stack behind the same VPC: one endpoint per VPC and role,
    created under the ledger's lock (a lost CreatorRequestId race must never become a second endpoint)."""
    spec, owner = inp.spec, deps.settings.owner_tag
    wanted = wanted_endpoints(spec)
    if not wanted:
        return ResolverEndpointsResult()
    vpcs = _validate(deps, spec.region, wanted)
    wanted = with_egress(spec, wanted, vpcs)
    resolver = deps.resolver(spec.region)
    prepay_resolver_calls(deps, resolver, 4 * len(wanted))
    states: list[ResolverEndpointState] = []
    for w in wanted:
        token = endpoint_token(owner, w)
        found = _find_endpoint(resolver, w, owner, token)
        group = _ensure_group(resolver, w, vpcs[w.vpc_id], owner)
        if found is None:
            key = _endpoint_key(w)
            with deps.ledger.lock(key, _lock_holder(inp), int(deps.clock())):
                found = _find_endpoint(resolver, w, owner, token) or _create_endpoint(
                    resolver, w, owner, token, group[0]
                )
        else:
            found = _repair(resolver, w, *found)
        info, action = found
        states.append(_endpoint_state(resolver, w, info, group, action))
    by_role = {s.role: s for s in states if s.role != "peered-outbound"}
    return ResolverEndpointsResult(
        outbound=by_role.get("outbound"),
        inbound=by_role.get("inbound"),
        peered=[s for s in states if s.role == "peered-outbound"],
    )


def _repair(
    resolver: ResolverClient, w: WantedEndpoint, info: ResolverEndpointInfo, action: Action
) -> tuple[ResolverEndpointInfo, Action]:
    """Drift repair of an endpoint found: what endpoint_repairs names."""
    have = {ip.subnet_id for ip in resolver.endpoint_ips(info.resolver_endpoint_id)}
    repairs = endpoint_repairs(w, info, have)
    for subnet_id in repairs.missing_subnets:
        info = resolver.associate_ip(info.resolver_endpoint_id, subnet_id)
    if repairs.add_do53:
        info = resolver.set_protocols(info.resolver_endpoint_id, sorted({*info.protocols, "Do53"}))
    return (info, "updated") if repairs.calls() else (info, action)


def _create_incarnation[Made: (ResolverEndpointInfo, ResolverRuleInfo)](
    token: str,
    what: str,
    create: Callable[[str], tuple[Made, bool]],
    gone: Callable[[Made], str | None],
) -> tuple[Made, Action]:
    """Create with the first CreatorRequestId not spent: `token`, then `token-1`, ... A request id whose
    resource was deleted by hand cannot be used again, and an idempotent replay that answers with that
    deleted resource (`gone` says how it is gone) must never be adopted."""
    last: ResourceConflictError | None = None
    for incarnation in range(_INCARNATIONS):
        request_id = token if incarnation == 0 else f"{token}-{incarnation}"
        try:
            made, adopted = create(request_id)
        except ResourceConflictError as exc:
            last = exc
            continue
        dead = gone(made)
        if dead is not None:
            last = ResourceConflictError(f"CreatorRequestId {request_id} names {dead}")
            continue
        return made, "adopted" if adopted else "created"
    raise ResourceConflictError(f"no CreatorRequestId left to create {what}: {last}")


def _endpoint_name(w: WantedEndpoint) -> str:
    return _endpoint_name_of(w.role, w.vpc_id)


def _endpoint_name_of(role: str, vpc_id: str) -> str:
    return _name("dbx-privatelink", role, vpc_id)


def _create_endpoint(
    resolver: ResolverClient, w: WantedEndpoint, owner: str, token: str, group_id: str
) -> tuple[ResolverEndpointInfo, Action]:
    name = _endpoint_name(w)
    return _create_incarnation(
        token,
        f"the {w.role} endpoint ({w.label})",
        lambda request_id: resolver.create_endpoint(
            name=name,
            direction=w.direction,
            creator_request_id=request_id,
            security_group_ids=[group_id],
            subnet_ids=list(w.subnet_ids),
            tags={OWNER_TAG_KEY: owner, ROLE_TAG_KEY: w.role, "Name": name},
        ),
        lambda e: (
            f"{e.resolver_endpoint_id}, {e.status}" if e.status.upper() in GONE_ENDPOINT_STATUSES else None
        ),
    )


def check_resolver_endpoints(inp: CheckResolverEndpointsInput, deps: Deps) -> PollState:
    """Ready once every endpoint is OPERATIONAL; ACTION_NEEDED or DELETING ends the run with AWS's message."""
    resolver = deps.resolver(inp.region)
    prepay_resolver_calls(deps, resolver, len(inp.endpoints.all()))
    waiting: list[str] = []
    for e in inp.endpoints.all():
        info = resolver.get_endpoint(e.resolver_endpoint_id)
        if info is None:
            waiting.append(f"{e.role} {e.resolver_endpoint_id} is not visible yet")
            continue
        status = info.status.upper()
        if status == "OPERATIONAL":
            continue
        if status in WAITING_ENDPOINT_STATUSES:
            waiting.append(f"{e.role} {e.resolver_endpoint_id} is {info.status}")
            continue
        raise EndpointFailedError(
            f"Route 53 Resolver {e.role} endpoint {e.resolver_endpoint_id} in {e.vpc_id} is {info.status}: "
            f"{info.status_message or 'no status message'}"
            + (
                " (check its subnets' free addresses and its security group)"
                if status == "ACTION_NEEDED"
                else "; re-run to create a new one"
            )
        )
    return poll_until_settled(
        inp.poll,
        waiting,
        settled="every Resolver endpoint is OPERATIONAL",
        policy=schedule_for(inp.poll, "resolver_endpoints", deps.settings.poll_expected_seconds),
        timeout=ResolverNotOperationalTimeoutError,
    )


# --- rules -------------------------------------------------------------------------------------------


def rule_state(w: WantedRule, rule_id: str, action: Action = "found") -> ResolverRuleState:
    """The rule as the steps after EnsureResolverRules (and plan's association decisions) see it."""
    return ResolverRuleState.model_validate(
        {
            "role": w.role,
            "resolver_rule_id": rule_id,
            "domain": w.domain,
            "rule_type": w.rule_type,
            "scope_vpc_id": w.scope_vpc_id,
            "resolver_endpoint_id": w.endpoint_id,
            "target_ips": [t.ip for t in w.targets],
            "action": action,
        }
    )


def rule_token(owner: str, w: WantedRule) -> str:
    return _token(owner, "rule", w.role, w.scope_vpc_id, w.domain, w.rule_type)


def find_rule(
    existing: list[ResolverRuleInfo],
    tags_of: Callable[[str], dict[str, str]],
    w: WantedRule,
    owner: str,
    token: str,
) -> tuple[ResolverRuleInfo, Action] | None:
    """Which existing rule serves `w` (plan and the step decide it here): ours by tags ("found"), else ours by
    its request id or a forward rule through our endpoint made by hand ("adopted": it gets our tags)."""
    candidates = sorted(
        (
            r
            for r in existing
            if r.domain == w.domain
            and r.rule_type == w.rule_type
            and not r.autodefined
            and r.status != "DELETING"
        ),
        key=lambda r: r.resolver_rule_id,
    )
    for r in candidates:
        if _ours(tags_of(r.arn), owner, w.role, w.scope_vpc_id):
            return r, "found"
    for r in candidates:
        if r.creator_request_id.startswith(token) or (
            w.endpoint_id and r.resolver_endpoint_id == w.endpoint_id
        ):
            return r, "adopted"
    return None


def _find_rule(
    resolver: ResolverClient, w: WantedRule, existing: list[ResolverRuleInfo], owner: str, token: str
) -> tuple[ResolverRuleInfo, Action] | None:
    found = find_rule(existing, resolver.tags, w, owner, token)
    if found is not None and found[1] == "adopted":
        _claim(
            resolver,
            found[0].arn,
            {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: w.role, SCOPE_TAG_KEY: w.scope_vpc_id},
        )
    return found


def _create_rule(
    resolver: ResolverClient, w: WantedRule, owner: str, token: str, name: str
) -> tuple[ResolverRuleInfo, Action]:
    return _create_incarnation(
        token,
        f"the {w.role} rule for {w.domain!r}",
        lambda request_id: resolver.create_rule(
            name=name,
            creator_request_id=request_id,
            rule_type=w.rule_type,
            domain=w.domain,
            target_ips=list(w.targets),
            resolver_endpoint_id=w.endpoint_id,
            tags={OWNER_TAG_KEY: owner, ROLE_TAG_KEY: w.role, SCOPE_TAG_KEY: w.scope_vpc_id},
        ),
        lambda r: f"{r.resolver_rule_id}, DELETING" if r.status.upper() == "DELETING" else None,
    )


def ensure_resolver_rules(inp: EnsureResolverRulesInput, deps: Deps) -> EnsureResolverRulesOutput:
    """Find, adopt, create or update (targets drifted) the forwarding and system rules."""
    spec, owner = inp.spec, deps.settings.owner_tag
    resolver = deps.resolver(spec.region)
    prepay_resolver_calls(deps, resolver, len(inp.endpoints.all()) + 1 + 2 * len(spec_rules(spec)))
    refreshed = [
        e.model_copy(update={"ips": sorted(ip.ip for ip in resolver.endpoint_ips(e.resolver_endpoint_id))})
        for e in inp.endpoints.all()
    ]
    by_id = {e.resolver_endpoint_id: e for e in refreshed}
    endpoints = ResolverEndpointsResult(
        outbound=by_id[inp.endpoints.outbound.resolver_endpoint_id] if inp.endpoints.outbound else None,
        inbound=by_id[inp.endpoints.inbound.resolver_endpoint_id] if inp.endpoints.inbound else None,
        peered=[by_id[p.resolver_endpoint_id] for p in inp.endpoints.peered],
    )
    if endpoints.inbound and not endpoints.inbound.ips:
        raise EventualConsistencyError(
            f"inbound endpoint {endpoints.inbound.resolver_endpoint_id} lists no IP address yet"
        )
    wanted = wanted_rules_now(spec, endpoints, deps)
    existing = resolver.list_rules() if wanted else []
    states: list[ResolverRuleState] = []
    for w in wanted:
        token = rule_token(owner, w)
        name = _name("dbxpl", w.role, _slug(w.domain))
        found = _find_rule(resolver, w, existing, owner, token)
        if found is None:
            # The rule is shared by every workspace behind the scope VPC: created under the ledger's lock.
            key = SharedKey("resolver-rule", rule_key(w.scope_vpc_id, w.domain, w.rule_type))
            with deps.ledger.lock(key, _lock_holder(inp), int(deps.clock())):
                fresh = resolver.list_rules()  # every rule: moto reads a "." rule back as ".."
                found = _find_rule(resolver, w, fresh, owner, token) or _create_rule(
                    resolver, w, owner, token, name
                )
        info, action = found
        if rule_drift(w, info) and w.endpoint_id:
            # Drift repair: someone changed the targets, or the inbound endpoint's IPs moved.
            info = resolver.update_rule(
                info.resolver_rule_id,
                name=info.name or name,
                target_ips=list(w.targets),
                resolver_endpoint_id=w.endpoint_id,
            )
            action = "updated"
        states.append(rule_state(w, info.resolver_rule_id, action))
    return EnsureResolverRulesOutput(endpoints=endpoints, rules=states)


# --- associations ------------------------------------------------------------------------------------


def association_vpcs(spec: SpecOfDns, rule: ResolverRuleState) -> list[str]:
    """The VPCs a rule is associated with: custom-DNS rules with the data-plane, front-end and listed VPCs;
    inbound-forward rules with their peered VPC only."""
    if rule.role == "inbound-forward":
        return [rule.scope_vpc_id]
    custom = spec.dns.custom_dns if spec.dns else None
    vpcs = [spec.network.vpc_id]
    if spec.front_end:
        vpcs.append(spec.front_end.vpc_id)
    vpcs += list(custom.associate_vpc_ids) if custom else []
    return list(dict.fromkeys(vpcs))


class AssociationDecision(NamedTuple):
    """A rule and a VPC (plan and EnsureRuleAssociations decide it here): the association there is, or none
    (create it), or why it cannot be made now (`busy`: being deleted) or at all (`conflict`)."""

    association: RuleAssociationInfo | None
    busy: str = ""
    conflict: str = ""

    @property
    def action(self) -> str:
        if self.busy or self.conflict:
            return "error"
        return "keep" if self.association is not None else "create"

    def calls(self) -> list[str]:
        return ["AssociateResolverRule"] if self.action == "create" else []


def decide_association(
    rule_id: str,
    domain: str,
    vpc_id: str,
    associations: list[RuleAssociationInfo],
    rules_by_id: dict[str, ResolverRuleInfo],
) -> AssociationDecision:
    """The association of `rule_id` with `vpc_id` among the VPC's `associations`; a VPC takes one rule per
    domain, so another rule of the same domain associated there is a conflict."""
    mine = [a for a in associations if a.resolver_rule_id == rule_id]
    if mine and mine[0].status.upper() == "DELETING":
        return AssociationDecision(
            None,
            busy=f"the association of {rule_id} with {vpc_id} is being deleted; associating again later",
        )
    if mine:
        return AssociationDecision(mine[0])
    other = next(
        (
            a
            for a in associations
            if a.resolver_rule_id in rules_by_id
            and rules_by_id[a.resolver_rule_id].domain == domain
            and a.status.upper() != "DELETING"
        ),
        None,
    )
    if other is not None:
        return AssociationDecision(
            None,
            conflict=f"{vpc_id} already has rule {other.resolver_rule_id} for {domain!r} associated; a VPC takes "
            "one rule per domain: disassociate it, or adopt it by naming it in the spec",
        )
    return AssociationDecision(None)


def inbound_clash(rule: ResolverRuleState, vpc: str, inbound_ips: dict[str, set[str]]) -> str:
    """Why AWS would refuse to associate the rule with the VPC (it targets an inbound endpoint of that VPC),
    or "" (plan and EnsureRuleAssociations decide it here)."""
    clash = sorted(set(rule.target_ips) & inbound_ips.get(vpc, set()))
    if not clash:
        return ""
    return (
        f"rule {rule.resolver_rule_id} ({rule.domain}) targets {', '.join(clash)}, the IPs of an inbound "
        f"endpoint in {vpc}: AWS refuses to associate it with that VPC ({INBOUND_TARGET_CODE}); "
        "associate forwarding rules to an inbound endpoint only with other (peered) VPCs"
    )


def inbound_ips_by_vpc(resolver: ResolverClient) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for e in resolver.list_endpoints(direction="INBOUND"):
        found.setdefault(e.vpc_id, set()).update(
            ip.ip for ip in resolver.endpoint_ips(e.resolver_endpoint_id)
        )
    return found


def ensure_rule_associations(inp: EnsureRuleAssociationsInput, deps: Deps) -> DnsResult:
    """Associate every rule with its VPCs (existing associations kept); refuse RSLVR-00804 before any call."""
    spec = inp.spec
    resolver = deps.resolver(spec.region)
    pairs = [(rule, vpc) for rule in inp.rules for vpc in association_vpcs(spec, rule)]
    if pairs:
        prepay_resolver_calls(deps, resolver, 4 + len({vpc for _, vpc in pairs}) + len(pairs))
    inbound_ips = inbound_ips_by_vpc(resolver) if pairs else {}
    for rule, vpc in pairs:
        clash = inbound_clash(rule, vpc, inbound_ips)
        if clash:
            raise SpecInvalidError(clash)
    rules_by_id = {r.resolver_rule_id: r for r in resolver.list_rules()} if pairs else {}
    existing: dict[str, list[RuleAssociationInfo]] = {}
    states: list[RuleAssociationState] = []
    for rule, vpc in pairs:
        if vpc not in existing:
            existing[vpc] = resolver.list_associations(vpc_id=vpc)
        decision = decide_association(rule.resolver_rule_id, rule.domain, vpc, existing[vpc], rules_by_id)
        action: Action = "found"
        if decision.busy:
            raise ResolverBusyError(decision.busy)
        if decision.conflict:
            raise ResourceConflictError(decision.conflict)
        if decision.association is not None:
            association = decision.association
        else:
            association, existed = resolver.associate(
                rule.resolver_rule_id, vpc, _name("dbxpl", rule.role, _slug(rule.domain), vpc)
            )
            action = "found" if existed else "created"
        states.append(
            RuleAssociationState(
                resolver_rule_association_id=association.association_id,
                resolver_rule_id=rule.resolver_rule_id,
                vpc_id=vpc,
                domain=rule.domain,
                status=association.status,
                action=action,
            )
        )
    return _dns_result(spec, inp.endpoints, inp.rules, states)


def _dns_result(
    spec: SpecOfDns,
    endpoints: ResolverEndpointsResult,
    rules: list[ResolverRuleState],
    associations: list[RuleAssociationState],
) -> DnsResult:
    inbound = spec.dns.inbound if spec.dns else None
    return DnsResult(
        outbound_endpoint=DnsOutboundEndpoint(
            resolver_endpoint_id=endpoints.outbound.resolver_endpoint_id,
            ips=endpoints.outbound.ips,
            security_group_id=endpoints.outbound.security_group_id,
        )
        if endpoints.outbound
        else None,
        forward_rule_id=next((r.resolver_rule_id for r in rules if r.role == "forward-all"), None),
        aws_rule_ids=[r.resolver_rule_id for r in rules if r.role == "aws-names"],
        associations=associations,
        inbound=DnsInbound(
            resolver_endpoint_id=endpoints.inbound.resolver_endpoint_id,
            vpc_id=endpoints.inbound.vpc_id,
            domains=list(inbound.domains),
            ips=endpoints.inbound.ips,
        )
        if endpoints.inbound and inbound
        else None,
        peered=[
            DnsPeered(
                vpc_id=p.vpc_id,
                resolver_endpoint_id=p.resolver_endpoint_id,
                rule_ids=[
                    r.resolver_rule_id
                    for r in rules
                    if r.role == "inbound-forward" and r.scope_vpc_id == p.vpc_id
                ],
            )
            for p in endpoints.peered
        ],
        resolver_endpoints=endpoints.all(),
        rules=rules,
        created=sorted(
            {e.resolver_endpoint_id for e in endpoints.all() if e.action == "created"}
            | {e.security_group_id for e in endpoints.all() if e.group_created}
            | {r.resolver_rule_id for r in rules if r.action == "created"}
        ),
    )


def check_rule_associations(inp: CheckRuleAssociationsInput, deps: Deps) -> PollState:
    """Ready once every association is COMPLETE; FAILED or OVERRIDDEN ends the run with AWS's message."""
    resolver = deps.resolver(inp.region)
    prepay_resolver_calls(deps, resolver, len(inp.associations))
    waiting: list[str] = []
    for a in inp.associations:
        info = resolver.get_association(a.resolver_rule_association_id)
        where = f"association {a.resolver_rule_association_id} of {a.resolver_rule_id} ({a.domain}) with {a.vpc_id}"
        if info is None:
            waiting.append(f"{where} is not visible yet")
            continue
        status = info.status.upper()
        if status == "COMPLETE":
            continue
        if status == "CREATING":
            waiting.append(f"{where} is CREATING")
        elif status == "FAILED":
            raise AwsRequestError(f"{where} FAILED: {info.status_message or 'no status message'}")
        else:
            raise ResourceConflictError(
                f"{where} is {info.status}: {info.status_message or 'no status message'}; re-run to associate again"
            )
    return poll_until_settled(
        inp.poll,
        waiting,
        settled="every rule association is COMPLETE",
        policy=schedule_for(inp.poll, "rule_associations", deps.settings.poll_expected_seconds),
        timeout=ResolverNotOperationalTimeoutError,
    )
