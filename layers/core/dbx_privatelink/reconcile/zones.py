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
from dbx_privatelink.reconcile.zone_checks import listed_zones

if TYPE_CHECKING:
    from dbx_privatelink.aws.zones import HostedZoneInfo
    from dbx_privatelink.dns.spec import PrivateZoneAssociation
    from dbx_privatelink.models.base import Action, PollState
    from dbx_privatelink.models.dns import DnsResult
    from dbx_privatelink.models.dns_checks import CheckZoneAssociationsInput
    from dbx_privatelink.models.dns_steps import EnsureZoneAssociationsInput
    from dbx_privatelink.wiring import Deps


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
