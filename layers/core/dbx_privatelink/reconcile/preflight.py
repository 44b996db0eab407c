"""Step 2: preflight, read-only. Every requirement is checked before any mutating call; all failures are
reported together so one run tells the operator everything to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.catalog import port_ranges
from dbx_privatelink.errors import PreflightFailedError
from dbx_privatelink.models.endpoints import EndpointPlan
from dbx_privatelink.models.record import PreflightOutput, SharedRef
from dbx_privatelink.reconcile.aws_services import aws_endpoint_plans
from dbx_privatelink.reconcile.databricks_objects import databricks_problems
from dbx_privatelink.reconcile.group_rules import (
    allows_all_within_group,
    allows_egress_beyond_group,
    allows_endpoint_ingress,
)
from dbx_privatelink.reconcile.shared import ADOPT_TAG_KEY as ADOPT_TAG_KEY
from dbx_privatelink.reconcile.shared import OWNER_TAG_KEY as OWNER_TAG_KEY
from dbx_privatelink.reconcile.shared import shared_keys
from dbx_privatelink.reconcile.zone_checks import zone_problems
from dbx_privatelink.spec import input_problems
from dbx_privatelink.spec_sections import MAX_GROUPS_PER_INTERFACE

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import (
        Ec2Client,
        EndpointInfo,
        SecurityGroupInfo,
        SubnetInfo,
        VpcInfo,
    )
    from dbx_privatelink.aws.resolver_types import ResolverEndpointInfo
    from dbx_privatelink.catalog import Catalog, RegionServices
    from dbx_privatelink.models.spec_step import SpecStep
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.spec_sections import WorkspaceSet
    from dbx_privatelink.wiring import Deps

if TYPE_CHECKING:
    from dbx_privatelink.reconcile.dns import WantedEndpoint  # it imports this module
    from dbx_privatelink.reconcile.dns_plan import PlannedChange  # it imports this module
MIN_PREFIX, MAX_PREFIX = 17, 26
MAX_INTERFACE_ENDPOINTS_PER_VPC = 50  # VPC quota, default


def _check_vpc(label: str, vpc: VpcInfo | None, vpc_id: str, problems: list[str]) -> None:
    if vpc is None:
        problems.append(f"{label}: VPC {vpc_id} does not exist in this region")
        return
    if not vpc.dns_support:
        problems.append(f"{label}: VPC {vpc_id} has enableDnsSupport off: turn it on (modify-vpc-attribute)")
    if not vpc.dns_hostnames:
        problems.append(
            f"{label}: VPC {vpc_id} has enableDnsHostnames off: turn it on (modify-vpc-attribute)"
        )


def _check_subnets(
    label: str, wanted: list[str], found: list[SubnetInfo], vpc_id: str, problems: list[str]
) -> list[SubnetInfo]:
    by_id = {s.subnet_id: s for s in found}
    for sid in wanted:
        if sid not in by_id:
            problems.append(f"{label}: subnet {sid} does not exist")
        elif by_id[sid].vpc_id != vpc_id:
            problems.append(f"{label}: subnet {sid} is in {by_id[sid].vpc_id}, not in {vpc_id}")
    return [by_id[s] for s in wanted if s in by_id]


def _check_workspace_sg(
    sg: SecurityGroupInfo,
    catalog: Catalog,
    problems: list[str],
    label: str = "network.workspace_security_group_ids",
) -> None:
    for direction in ("ingress", "egress"):
        for protocol in ("tcp", "udp"):
            if not allows_all_within_group(sg, direction, protocol):
                problems.append(
                    f"{label}: {sg.group_id} must allow all {protocol.upper()} "
                    f"{direction} to and from itself (add a rule with the group as its own source/destination)"
                )
    for lo, hi in port_ranges(catalog.workspace_sg_egress_tcp_ports):
        if not all(allows_egress_beyond_group(sg, "tcp", p) for p in (lo, hi)):
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            problems.append(
                f"{label}: {sg.group_id} must allow egress TCP {ports} "
                "(Databricks control plane, relay and metastore)"
            )


def _check_endpoint_sg(
    sg: SecurityGroupInfo, catalog: Catalog, workspace_sets: list[WorkspaceSet], problems: list[str]
) -> None:
    for rule in sg.ingress:
        if "0.0.0.0/0" in rule.cidrs:
            problems.append(
                f"network.endpoint_security_group_id: {sg.group_id} allows ingress from 0.0.0.0/0: "
                "allow only the workspace security group or the VPC CIDR"
            )
    # Clusters on either set reach the endpoints: each set's groups (or the VPC CIDR) must be let in.
    for lo, _hi in port_ranges(catalog.endpoint_sg_ingress_tcp_ports):
        for ws in workspace_sets:
            if not allows_endpoint_ingress(sg, lo, ws.security_group_ids):
                problems.append(
                    f"network.endpoint_security_group_id: {sg.group_id} must allow ingress TCP {lo} from the "
                    f"groups in {ws.spec_field}.workspace_security_group_ids or the VPC CIDR"
                )


def _check_workspace_subnets(
    ws: WorkspaceSet, found: list[SubnetInfo], vpc_id: str, problems: list[str]
) -> None:
    label = f"{ws.spec_field}.workspace_subnet_ids"
    subnets = _check_subnets(label, list(ws.subnet_ids), found, vpc_id, problems)
    zones = {s.availability_zone for s in subnets}
    if len(subnets) == len(ws.subnet_ids) and len(zones) < 2:
        problems.append(
            f"{label}: all subnets are in {', '.join(sorted(zones))}; Databricks needs "
            "at least two subnets in distinct availability zones"
        )
    per_zone: dict[str, list[str]] = {}
    for s in subnets:
        per_zone.setdefault(s.availability_zone, []).append(s.subnet_id)
    for zone, ids in sorted(per_zone.items()):
        if len(ids) > 1:
            problems.append(
                f"{label}: {', '.join(ids)} are all in {zone}; Databricks takes one "
                "workspace subnet per availability zone"
            )
    for s in subnets:
        if not MIN_PREFIX <= s.prefix_length <= MAX_PREFIX:
            problems.append(
                f"{label}: {s.subnet_id} is /{s.prefix_length}; use a netmask between "
                f"/{MIN_PREFIX} and /{MAX_PREFIX}"
            )


def _databricks_plans(spec: WorkspaceSpec, services: RegionServices) -> list[EndpointPlan]:
    net = spec.network
    plans = [
        EndpointPlan(
            role="workspace",
            vpc_id=net.vpc_id,
            service_name=services.workspace_service,
            subnet_ids=net.endpoint_subnet_ids,
            security_group_ids=[net.endpoint_security_group_id],
            adopt_id=spec.endpoints.adopt.workspace,
        ),
        EndpointPlan(
            role="relay",
            vpc_id=net.vpc_id,
            service_name=services.relay_service,
            subnet_ids=net.endpoint_subnet_ids,
            security_group_ids=[net.endpoint_security_group_id],
            adopt_id=spec.endpoints.adopt.relay,
        ),
    ]
    if spec.front_end:
        plans.append(
            EndpointPlan(
                role="front_end",
                vpc_id=spec.front_end.vpc_id,
                service_name=services.workspace_service,
                subnet_ids=spec.front_end.subnet_ids,
                security_group_ids=[spec.front_end.security_group_id],
                adopt_id=spec.endpoints.adopt.front_end,
            )
        )
    return plans


def _check_endpoint_ownership(
    plan: EndpointPlan, existing: list[EndpointInfo], owner: str, ec2: Ec2Client, problems: list[str]
) -> None:
    if plan.adopt_id:
        found = ec2.get_endpoints([plan.adopt_id]).get(plan.adopt_id)
        if found is None or found.gone:
            problems.append(f"endpoints.adopt.{plan.role}: {plan.adopt_id} does not exist (or is deleted)")
        elif found.vpc_id != plan.vpc_id or found.service_name != plan.service_name:
            problems.append(
                f"endpoints.adopt.{plan.role}: {plan.adopt_id} connects {found.vpc_id} to {found.service_name}, "
                f"expected {plan.vpc_id} to {plan.service_name}"
            )
        elif owner not in (found.tags.get(OWNER_TAG_KEY), found.tags.get(ADOPT_TAG_KEY)):
            problems.append(
                f"endpoints.adopt.{plan.role}: {plan.adopt_id} is not handed over to this stack: tag it "
                f"{ADOPT_TAG_KEY}={owner} (aws ec2 create-tags --resources {plan.adopt_id} --tags "
                f"Key={ADOPT_TAG_KEY},Value={owner}); the stack tags as its own only what it creates or is given"
            )
        return
    foreign = [e.vpc_endpoint_id for e in existing if e.tags.get(OWNER_TAG_KEY) != owner]
    if foreign and len(foreign) == len(existing):
        problems.append(
            f"endpoints.adopt.{plan.role}: VPC {plan.vpc_id} already has {', '.join(foreign)} to "
            f"{plan.service_name}; set endpoints.adopt.{plan.role} to adopt it instead of creating a second one"
        )


def _check_shared_endpoints(
    plans: list[EndpointPlan], ec2: Ec2Client, owner: str, problems: list[str]
) -> dict[str, list[EndpointInfo]]:
    """The quotas a VPC's shared endpoints run into as workspaces join it, and private DNS names another
    endpoint holds, named before any change. Returns the endpoints of each VPC it read."""
    by_vpc: dict[str, list[EndpointInfo]] = {}
    for plan in plans:
        if plan.vpc_id not in by_vpc:
            by_vpc[plan.vpc_id] = ec2.find_endpoints(plan.vpc_id)
    for vpc_id, existing in by_vpc.items():
        interfaces = [e for e in existing if e.endpoint_type == "Interface"]
        new = [
            p
            for p in plans
            if p.vpc_id == vpc_id
            and p.endpoint_type == "Interface"
            and not p.adopt_id
            and not any(
                e.service_name == p.service_name and e.tags.get(OWNER_TAG_KEY) == owner for e in existing
            )
        ]
        if len(interfaces) + len(new) > MAX_INTERFACE_ENDPOINTS_PER_VPC:
            problems.append(
                f"network.vpc_id: {vpc_id} has {len(interfaces)} interface endpoints and this spec adds {len(new)}: "
                f"the quota 'interface endpoints per VPC' is {MAX_INTERFACE_ENDPOINTS_PER_VPC}; raise it in Service "
                "Quotas or remove endpoints"
            )
    for plan in plans:
        existing = [e for e in by_vpc[plan.vpc_id] if e.service_name == plan.service_name]
        ours = [e for e in existing if e.tags.get(OWNER_TAG_KEY) == owner]
        if plan.endpoint_type == "Interface" and ours:
            groups = {*ours[0].security_group_ids, *plan.security_group_ids}
            if len(groups) > MAX_GROUPS_PER_INTERFACE:
                problems.append(
                    f"network.endpoint_security_group_id: the {plan.role} endpoint {ours[0].vpc_endpoint_id} of "
                    f"{plan.vpc_id} is shared by the workspaces of the VPC and carries "
                    f"{', '.join(sorted(ours[0].security_group_ids))}; adding {', '.join(plan.security_group_ids)} "
                    f"makes {len(groups)} groups, the quota 'security groups per network interface' is "
                    f"{MAX_GROUPS_PER_INTERFACE}: use one of its groups as this workspace's endpoint group"
                )
        foreign_dns = [e for e in existing if e.tags.get(OWNER_TAG_KEY) != owner and e.private_dns_enabled]
        if not plan.is_databricks and plan.private_dns_at_create and foreign_dns and not ours:
            problems.append(
                f"endpoints.aws_services: {plan.vpc_id} already has {foreign_dns[0].vpc_endpoint_id} to "
                f"{plan.service_name} with private DNS on, which this application does not manage (AWS allows "
                f"one per service and VPC): remove {plan.role} from endpoints.aws_services, that endpoint serves it"
            )
    return by_vpc


class Assessment(NamedTuple):
    """What preflight found: the endpoint plan, and every problem that must be fixed before a change."""

    endpoints: list[EndpointPlan]
    problems: list[str]
    private_dns_name: str
    warnings: list[str]
    # The endpoints of each VPC of the plan as read (not gone): what the convergence check compares.
    listing: dict[str, list[EndpointInfo]]
    # plan_dns's items (zones left out) when the DNS checks got that far: the convergence check's too.
    dns_plan: list[PlannedChange] | None = None
    # The region's Resolver endpoints as listed, when the spec adds one no other workspace holds yet
    # (preflight then reserves it under the quota's lock): None otherwise.
    resolver_listing: list[ResolverEndpointInfo] | None = None
    # The inbound endpoint whose shared group the spec adds rules to, with its VPC (preflight then reserves
    # them under the group's lock): None otherwise.
    inbound_group: tuple[WantedEndpoint, VpcInfo] | None = None


def preflight(inp: SpecStep, deps: Deps) -> PreflightOutput:
    """Check every requirement read-only, on AWS and in Databricks, and resolve the endpoint plan;
    PreflightFailedError lists failures. Once every check passed, the spec becomes the workspace's desired
    state (fenced by the lease: a failed spec never replaces the last good one) and the workspace refers to
    the resources it shares with others (the ledger), before any step finds or creates one."""
    from dbx_privatelink.reconcile.converged import converged, read_once  # the DNS steps import this module
    from dbx_privatelink.reconcile.dns import group_rules_held, resolver_quota_held  # it imports this module

    spec = inp.spec
    found = assess(spec, deps)
    observed = deps.store.get_observed(spec.workspace_key) or {}
    databricks = read_once(deps.databricks(spec.databricks.account_id))
    # What apply refuses locally, for a run started otherwise (plain StartExecution, a drift repair of a spec an
    # earlier version stored).
    problems = [
        *input_problems(spec),
        *found.problems,
        *databricks_problems(databricks, spec, observed),
    ]
    if problems:
        raise PreflightFailedError(
            f"Preflight found {len(problems)} problem(s); nothing was changed:\n- " + "\n- ".join(problems)
        )
    keys = shared_keys(spec, found.endpoints)
    # New Resolver endpoints: the region's quota is counted again under its lock, held while the workspace
    # refers to (reserves) them, so that runs started at the same moment cannot together exceed it.
    with resolver_quota_held(spec, deps, inp.execution_name, found.resolver_listing):
        records = deps.ledger.refer(spec.workspace_key, [k for k in keys if k.kind == "resolver-endpoint"])
    # New rules in a shared inbound group: its rules are counted again under its lock, held while the spec
    # (which names the networks the rules admit) becomes desired and the workspace refers to the group.
    with group_rules_held(spec, deps, inp.execution_name, found.inbound_group):
        deps.store.put_desired(spec, holder=inp.execution_name)
        deps.store.clear_pending(spec.workspace_key, spec.spec_hash())
        records |= deps.ledger.refer(spec.workspace_key, [k for k in keys if k.kind != "resolver-endpoint"])
    convergence = converged(spec, found, observed, databricks, deps)
    return PreflightOutput(
        endpoints=[p for p in found.endpoints if p.is_databricks],
        aws_endpoints=[p for p in found.endpoints if not p.is_databricks],
        private_dns_name=found.private_dns_name,
        warnings=found.warnings,
        shared=[SharedRef(kind=k.kind, key=k.key, resource_id=r.resource_id) for k, r in records.items()],
        converged=convergence.result,
        converged_reason=convergence.reason,
    )


def assess(spec: WorkspaceSpec, deps: Deps, *, zones: bool = True, dns: bool = True) -> Assessment:
    """Every read-only check and the endpoint plan; raises only when the region itself is unusable.
    `zones=False` leaves out dns.private_zones and `dns=False` the Resolver checks (the drift scan reads
    those once, in check_dns)."""
    problems: list[str] = []
    # The catalog first: "deploy the stack in <region>" is no advice for a region Databricks does not serve.
    services = deps.catalog.region(spec.region)
    if services is None:
        raise PreflightFailedError(deps.catalog.region_problem(spec.region) or spec.region)
    if spec.region != deps.settings.region:
        raise PreflightFailedError(
            f"region: the spec is for {spec.region} but this stack runs in {deps.settings.region}; "
            f"deploy the stack in {spec.region} and start the execution there"
        )
    ec2 = deps.ec2(spec.region)
    offered = ec2.known_services([services.workspace_service, services.relay_service])
    for service in (services.workspace_service, services.relay_service):
        if service not in offered:
            problems.append(
                f"region: endpoint service {service} is not available to this account; ask Databricks to "
                "enable PrivateLink for the AWS account (the seed's 'PrivateLink の有効化' step)"
            )

    net = spec.network
    vpc = ec2.get_vpc(net.vpc_id)
    _check_vpc("network.vpc_id", vpc, net.vpc_id, problems)
    workspace_sets = net.workspace_sets()
    subnets = ec2.get_subnets([*net.all_workspace_subnet_ids(), *net.endpoint_subnet_ids])
    for ws in workspace_sets:
        _check_workspace_subnets(ws, subnets, net.vpc_id, problems)
    _check_subnets("network.endpoint_subnet_ids", net.endpoint_subnet_ids, subnets, net.vpc_id, problems)

    group_ids = [*net.all_workspace_security_group_ids(), net.endpoint_security_group_id]
    groups = {g.group_id: g for g in ec2.get_security_groups(group_ids)}
    for gid in group_ids:
        if gid not in groups:
            problems.append(f"network: security group {gid} does not exist")
        elif groups[gid].vpc_id != net.vpc_id:
            problems.append(f"network: security group {gid} is in {groups[gid].vpc_id}, not in {net.vpc_id}")
    for ws in workspace_sets:
        for gid in ws.security_group_ids:
            if gid in groups:
                label = f"{ws.spec_field}.workspace_security_group_ids"
                _check_workspace_sg(groups[gid], deps.catalog, problems, label)
    if net.endpoint_security_group_id in groups:
        _check_endpoint_sg(groups[net.endpoint_security_group_id], deps.catalog, workspace_sets, problems)

    if spec.front_end:
        fe = spec.front_end
        _check_vpc("front_end.vpc_id", ec2.get_vpc(fe.vpc_id), fe.vpc_id, problems)
        _check_subnets(
            "front_end.subnet_ids", fe.subnet_ids, ec2.get_subnets(fe.subnet_ids), fe.vpc_id, problems
        )
        fe_groups = ec2.get_security_groups([fe.security_group_id])
        if not fe_groups:
            problems.append(f"front_end.security_group_id: {fe.security_group_id} does not exist")

    plans = _databricks_plans(spec, services)
    main_rt = ec2.main_route_table(net.vpc_id) if "s3" in spec.endpoints.aws_services and vpc else None
    plans += aws_endpoint_plans(spec, main_rt, problems)
    for plan in plans:
        if plan.is_databricks:
            existing = ec2.find_endpoints(plan.vpc_id, plan.service_name)
            _check_endpoint_ownership(plan, existing, deps.settings.owner_tag, ec2, problems)

    listing = _check_shared_endpoints(plans, ec2, deps.settings.owner_tag, problems)
    dns_plan, resolver_listing, inbound_group = None, None, None
    if dns:
        from dbx_privatelink.reconcile.dns import dns_assessment  # the DNS steps import this module

        dns_found = dns_assessment(spec, deps)
        problems += dns_found.problems
        dns_plan, resolver_listing, inbound_group = (
            dns_found.planned,
            dns_found.listing,
            dns_found.inbound_group,
        )
    if zones:
        problems += zone_problems(spec, deps)
    warnings = []
    custom = spec.dns.custom_dns if spec.dns else None
    if custom and custom.allowed_cidrs:
        warnings.append(
            "dns.custom_dns.allowed_cidrs is no longer used: an outbound endpoint takes no DNS in, its group "
            "lets DNS out to corporate_dns_ips only; remove the field"
        )
    return Assessment(
        endpoints=plans,
        problems=problems,
        private_dns_name=services.private_dns_name,
        warnings=warnings,
        listing=listing,
        dns_plan=dns_plan,
        resolver_listing=resolver_listing,
        inbound_group=inbound_group,
    )
