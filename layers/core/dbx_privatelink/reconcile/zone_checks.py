"""Reading the private hosted zones a spec lists (dns.private_zones), changing nothing: preflight's problems
(the zone exists and is private, its VPCs exist), and the drift scan's state of each association."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbx_privatelink.aws.zones import HostedZoneInfo
    from dbx_privatelink.dns.spec import PrivateZoneAssociation
    from dbx_privatelink.models.dns_spec import SpecOfDns
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps


def listed_zones(
    spec: SpecOfDns, deps: Deps
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
