"""Who else uses what: the other managed workspaces whose specs name a shared resource or a security group.

A guard beside the ledger's references (a workspace applied before the ledger has none): the plan, the
release of the shared resources and the revocation of restored rules each ask it again as things stand.
A managed workspace whose stored spec no longer validates (written by an older version, say) names nothing
anyone can read: what it uses is unknown, so nothing shared is deleted while there is one
(`OtherSpecs.unreadable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.models.endpoints import EndpointPlan
from dbx_privatelink.reconcile.aws_services import aws_endpoint_plans
from dbx_privatelink.reconcile.shared import shared_keys
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.catalog import Catalog
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.store import Desired


def endpoint_plans(spec: WorkspaceSpec, catalog: Catalog) -> list[EndpointPlan]:
    """The endpoints a spec asks for, as far as the ledger's keys need them (VPC, service, role): the same
    keys preflight refers to, computed without reading AWS."""
    services = catalog.region(spec.region)
    plans: list[EndpointPlan] = []
    if services is not None:
        net = spec.network
        plans += [
            EndpointPlan(role="workspace", vpc_id=net.vpc_id, service_name=services.workspace_service),
            EndpointPlan(role="relay", vpc_id=net.vpc_id, service_name=services.relay_service),
        ]
        if spec.front_end:
            plans.append(
                EndpointPlan(
                    role="front_end", vpc_id=spec.front_end.vpc_id, service_name=services.workspace_service
                )
            )
    return plans + aws_endpoint_plans(spec, None, [])


def keys_of_spec(spec: WorkspaceSpec, catalog: Catalog) -> set[SharedKey]:
    """Every shared resource a spec uses (ledger.SharedKey), known from the spec alone."""
    return set(shared_keys(spec, endpoint_plans(spec, catalog)))


def users_besides(workspace_key: str, *groups: Iterable[str]) -> list[str]:
    """The workspaces other than `workspace_key` in any of the groups, sorted."""
    return sorted({u for g in groups for u in g} - {workspace_key})


class OtherSpecs(NamedTuple):
    """The other managed workspaces (not decommissioned) by their stored specs, each parsed once; those whose
    spec no longer validates are apart (`unreadable`: key -> the first problem), since what they use is
    unknown."""

    specs: dict[str, WorkspaceSpec]
    unreadable: dict[str, str]

    def unknown_users(self) -> str:
        """Why nothing shared may be deleted while a spec cannot be read, and what to do; "" when all read."""
        if not self.unreadable:
            return ""
        named = "; ".join(f"{key} ({problem})" for key, problem in sorted(self.unreadable.items()))
        return (
            f"the stored spec of {named} no longer validates, so what it uses is unknown; re-apply it with a "
            "valid spec, or decommission it first, then run this decommission again"
        )


def other_specs(desired: dict[str, Desired], workspace_key: str) -> OtherSpecs:
    """The managed workspaces besides `workspace_key` that are not decommissioned, their specs parsed."""
    specs: dict[str, WorkspaceSpec] = {}
    unreadable: dict[str, str] = {}
    for key, entry in sorted(desired.items()):
        if key == workspace_key or entry.decommission is not None:
            continue
        try:
            specs[key] = parse_spec(entry.spec)
        except SpecInvalidError as exc:
            problems = str(exc).splitlines()
            unreadable[key] = problems[1].lstrip("- ") if len(problems) > 1 else problems[0]
    return OtherSpecs(specs, unreadable)


def spec_users(others: OtherSpecs, catalog: Catalog) -> dict[SharedKey, list[str]]:
    """Which other workspaces use each shared key, by their specs: a guard beside the ledger for a workspace
    whose reference was never recorded."""
    users: dict[SharedKey, list[str]] = {}
    for key, spec in others.specs.items():
        for shared in keys_of_spec(spec, catalog):
            users.setdefault(shared, []).append(key)
    return users


def groups_named_by(others: OtherSpecs) -> dict[str, list[str]]:
    """group id -> the other workspaces whose spec names it (workspace sets, endpoint group)."""
    named: dict[str, list[str]] = {}
    for key, spec in others.specs.items():
        net = spec.network
        for group in {*net.all_workspace_security_group_ids(), net.endpoint_security_group_id}:
            named.setdefault(group, []).append(key)
    return named
