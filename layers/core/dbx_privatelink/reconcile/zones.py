"""The private hosted zones a workspace's names depend on (dns.private_zones): each stays associated with
its VPCs. Names only one VPC can resolve (the inbound pattern's zones, a privatelink zone of your own) stop
resolving the moment someone runs DisassociateVPCFromHostedZone; the step associates the VPC again.

The zones themselves are the operator's: never created, changed, deleted or disassociated here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.errors import PreflightFailedError, ZoneChangeNotInSyncTimeoutError
from dbx_privatelink.models.dns import ZoneAssociationState
from dbx_privatelink.reconcile.polling import poll_until_settled, schedule_for

if TYPE_CHECKING:
    from dbx_privatelink.aws.zones import HostedZoneInfo
    from dbx_privatelink.dns.spec import PrivateZoneAssociation
    from dbx_privatelink.models.base import Action, PollState
    from dbx_privatelink.models.dns import CheckZoneAssociationsInput, DnsResult, EnsureZoneAssociationsInput
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps


def listed_zones(
    spec: WorkspaceSpec, deps: Deps
) -> list[tuple[str, PrivateZoneAssociation, HostedZoneInfo | None]]:
    """(where in the spec, what it asks, the zone as Route 53 has it or None) for each listed zone."""
    wanted = spec.dns.private_zones if spec.dns else []
    return [(f"dns.private_zones[{n}]", z, deps.zones.get(z.hosted_zone_id)) for n, z in enumerate(wanted)]


def zone_problems(spec: WorkspaceSpec, deps: Deps) -> list[str]:
    """Preflight: every listed zone exists and is private, every listed VPC exists in the spec's region."""
    zones = listed_zones(spec, deps)
    problems: list[str] = []
    for where, wanted, zone in zones:
        if zone is None:
            problems.append(
                f"{where}.hosted_zone_id: no hosted zone {wanted.hosted_zone_id} in this account; check the id"
            )
        elif not zone.private:
            problems.append(
                f"{where}.hosted_zone_id: {wanted.hosted_zone_id} ({zone.name}) is a public zone; only private "
                "hosted zones are associated with VPCs"
            )
    ec2 = deps.ec2(spec.region)
    missing = {v for v in {v for _, wanted, _ in zones for v in wanted.vpc_ids} if ec2.get_vpc(v) is None}
    problems += [
        f"{where}.vpc_ids: VPC {vpc_id} does not exist in {spec.region}"
        for where, wanted, _ in zones
        for vpc_id in wanted.vpc_ids
        if vpc_id in missing
    ]
    return problems


def association_states(spec: WorkspaceSpec, deps: Deps) -> list[tuple[str, str, bool, str]]:
    """(zone id, VPC id, associated, what is wrong or "") for each (zone, VPC) of dns.private_zones."""
    states: list[tuple[str, str, bool, str]] = []
    for _, wanted, zone in listed_zones(spec, deps):
        for vpc_id in wanted.vpc_ids:
            if zone is None:
                states.append(
                    (
                        wanted.hosted_zone_id,
                        vpc_id,
                        False,
                        f"private hosted zone {wanted.hosted_zone_id} does not exist",
                    )
                )
            elif not zone.associated(vpc_id, spec.region):
                states.append(
                    (
                        zone.zone_id,
                        vpc_id,
                        False,
                        f"private hosted zone {zone.zone_id} ({zone.name}) is not associated with {vpc_id}",
                    )
                )
            else:
                states.append((zone.zone_id, vpc_id, True, ""))
    return states


def missing_associations(spec: WorkspaceSpec, deps: Deps) -> list[str]:
    """Drift: each (zone, VPC) of dns.private_zones that is not associated, in words."""
    return list(dict.fromkeys(finding for *_, finding in association_states(spec, deps) if finding))


def zone_associations_to_make(
    where: str, wanted: PrivateZoneAssociation, zone: HostedZoneInfo | None, region: str
) -> list[tuple[str, bool]]:
    """(VPC, already associated) for each VPC a listed zone must stay associated with (plan and
    EnsureZoneAssociations decide it here); a zone that is gone or public cannot be associated at all."""
    if zone is None or not zone.private:
        raise PreflightFailedError(
            f"{where}.hosted_zone_id: {wanted.hosted_zone_id} is "
            + ("gone" if zone is None else "not a private zone")
            + "; this step associated nothing"
        )
    return [(vpc_id, zone.associated(vpc_id, region)) for vpc_id in wanted.vpc_ids]


def ensure_zone_associations(inp: EnsureZoneAssociationsInput, deps: Deps) -> DnsResult:
    """Associate each listed VPC that is missing from its zone; the DNS branch's result gains the list."""
    spec = inp.spec
    states: list[ZoneAssociationState] = []
    # Every zone is decided before the first association: a zone that is gone stops the step unchanged.
    decided = [
        (zone, vpc_id, associated)
        for where, wanted, zone in listed_zones(spec, deps)
        for vpc_id, associated in zone_associations_to_make(where, wanted, zone, spec.region)
        if zone is not None
    ]
    for zone, vpc_id, associated in decided:
        action: Action = "found"
        change = None
        if not associated:
            change = deps.zones.associate(zone.zone_id, vpc_id, spec.region)
            action = "created"
        states.append(
            ZoneAssociationState(
                hosted_zone_id=zone.zone_id,
                zone_name=zone.name,
                vpc_id=vpc_id,
                action=action,
                change=change,
            )
        )
    return inp.dns.model_copy(update={"zone_associations": states})


def check_zone_associations(inp: CheckZoneAssociationsInput, deps: Deps) -> PollState:
    """Ready once every association made in this run is INSYNC (answered by every Route 53 location)."""
    waiting = [
        f"the association of {a.vpc_id} with {a.hosted_zone_id} ({a.zone_name}) is {status}"
        for a in inp.zone_associations
        if a.change and (status := deps.zones.change_status(a.change)) != "INSYNC"
    ]
    return poll_until_settled(
        inp.poll,
        waiting,
        settled="every private hosted zone association is INSYNC",
        policy=schedule_for(inp.poll, "zone_associations", deps.settings.poll_expected_seconds),
        timeout=ZoneChangeNotInSyncTimeoutError,
    )
