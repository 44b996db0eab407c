"""Finding, live, the resources behind a workspace's ledger keys, and which of them this application made.

The plan and every deleting step find first (by ownership tag, role, scope and name, as the reconcile
does), with the ids the ledger or the store recorded only as hints: a resource recreated since (a drift
repair) is found under its new id, and one deleted by hand is simply not found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.aws.resolver_types import GONE_ENDPOINT_STATUSES, normalize_domain
from dbx_privatelink.reconcile.shared import (
    OWNER_TAG_KEY,
    REGISTRATION_PREFIX,
    ROLE_TAG_KEY,
    SCOPE_TAG_KEY,
    group_name,
)
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import Ec2Client
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.databricks.models import VpcEndpoint
    from dbx_privatelink.spec import WorkspaceSpec


class Located(NamedTuple):
    """The live resources behind one key; `made_by_app` False with `not_ours` saying why they stay."""

    ids: tuple[str, ...] = ()
    made_by_app: bool = True
    not_ours: str = ""
    # Associations: the rules they associate (DisassociateResolverRule takes the rule and the VPC).
    rule_ids: tuple[str, ...] = ()


def adopted_endpoint_ids(spec: WorkspaceSpec) -> set[str]:
    """Endpoints the spec names in endpoints.adopt: they were the customer's before the application."""
    adopt = spec.endpoints.adopt
    return {i for i in (adopt.workspace, adopt.relay, adopt.front_end) if i}


def _vpc_service(key: SharedKey) -> tuple[str, str]:
    vpc_id, service = key.key.split("|", 1)
    return vpc_id, service


def locate_endpoints(ec2: Ec2Client, owner: str, key: SharedKey, adopted: set[str]) -> Located:
    """The application's endpoints (ownership tag) of the key's VPC and service that are not gone."""
    vpc_id, service = _vpc_service(key)
    ours = sorted(
        e.vpc_endpoint_id for e in ec2.find_endpoints(vpc_id, service) if e.tags.get(OWNER_TAG_KEY) == owner
    )
    foreign = [i for i in ours if i in adopted]
    if foreign:
        return Located(
            tuple(ours),
            made_by_app=False,
            not_ours=f"adopted through endpoints.adopt ({', '.join(foreign)}): it was yours before the "
            "application took it over; delete it yourself when nothing needs it",
        )
    return Located(tuple(ours))


def endpoint_ids_ever(ec2: Ec2Client, owner: str, key: SharedKey) -> set[str]:
    """Every endpoint of the key the application made, gone ones included (their registrations remain)."""
    vpc_id, service = _vpc_service(key)
    return {
        e.vpc_endpoint_id
        for e in ec2.find_endpoints(vpc_id, service, include_gone=True)
        if e.tags.get(OWNER_TAG_KEY) == owner
    }


def locate_registrations(
    registrations: list[VpcEndpoint], aws_ids: set[str], hints: set[str], region: str
) -> Located:
    """The registrations of the key's endpoints (by AWS endpoint id), or the recorded ones."""
    found = sorted(
        (
            r
            for r in registrations
            if (r.region == region and r.aws_vpc_endpoint_id in aws_ids) or r.vpc_endpoint_id in hints
        ),
        key=lambda r: r.vpc_endpoint_id,
    )
    foreign = [r for r in found if not (r.vpc_endpoint_name or "").startswith(REGISTRATION_PREFIX)]
    if foreign:
        return Located(
            tuple(r.vpc_endpoint_id for r in found),
            made_by_app=False,
            not_ours=f"registered outside the application ({', '.join(r.vpc_endpoint_name or '' for r in foreign)})",
        )
    return Located(tuple(r.vpc_endpoint_id for r in found))


def _tags(resolver: ResolverClient, arn: str) -> dict[str, str]:
    return resolver.tags(arn) if arn else {}


def locate_resolver_endpoint(resolver: ResolverClient, owner: str, key: SharedKey) -> Located:
    """The application's Resolver endpoint of the key's VPC and role (ownership and role tags)."""
    vpc_id, role = key.key.split("|", 1)
    found = []
    for e in resolver.list_endpoints(vpc_id=vpc_id):
        if e.status.upper() in GONE_ENDPOINT_STATUSES:
            continue
        tags = _tags(resolver, e.arn)
        if tags.get(OWNER_TAG_KEY) == owner and tags.get(ROLE_TAG_KEY) == role:
            found.append(e.resolver_endpoint_id)
    return Located(tuple(sorted(found)))


def locate_resolver_group(resolver: ResolverClient, owner: str, key: SharedKey) -> Located:
    """The group the application makes for the key's Resolver endpoint (by its name), if tagged ours."""
    vpc_id, role = key.key.split("|", 1)
    group = resolver.find_security_group(vpc_id, group_name(owner, role))
    if group is None:
        return Located()
    if group.tags.get(OWNER_TAG_KEY) != owner:
        return Located(
            (group.group_id,),
            made_by_app=False,
            not_ours=f"named like the application's group but not tagged {OWNER_TAG_KEY}={owner}",
        )
    return Located((group.group_id,))


def _rule_parts(rule_key: str) -> tuple[str, str, str]:
    scope, domain, rule_type = rule_key.split("|", 2)
    return scope, domain, rule_type


def locate_rule(resolver: ResolverClient, owner: str, key: SharedKey) -> Located:
    """The application's rule for the key's scope VPC, domain and type (ownership and scope tags)."""
    scope, domain, rule_type = _rule_parts(key.key)
    found = []
    # Every rule, compared after normalizing: a DomainName filter misses "." where the service stores it
    # with a dot appended (moto does; AWS answers "." as ".").
    for r in resolver.list_rules():
        if (
            r.domain != normalize_domain(domain)
            or r.rule_type != rule_type
            or r.autodefined
            or r.status.upper() == "DELETING"
        ):
            continue
        tags = _tags(resolver, r.arn)
        if tags.get(OWNER_TAG_KEY) == owner and tags.get(SCOPE_TAG_KEY) == scope:
            found.append(r.resolver_rule_id)
    return Located(tuple(sorted(found)))


def locate_association(resolver: ResolverClient, owner: str, key: SharedKey) -> Located:
    """The association of the application's rule (the key without its last part) with the key's VPC."""
    rule_key, vpc_id = key.key.rsplit("|", 1)
    rules = locate_rule(resolver, owner, SharedKey("resolver-rule", rule_key)).ids
    if not rules:
        return Located()
    found = [
        a
        for a in resolver.list_associations(vpc_id=vpc_id)
        if a.resolver_rule_id in rules and a.status.upper() != "DELETING"
    ]
    return Located(
        tuple(a.association_id for a in found), rule_ids=tuple(sorted({a.resolver_rule_id for a in found}))
    )
