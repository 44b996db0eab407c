"""What a decommission takes down and what it keeps, and why: one plan, read-only, for the state machine's
PlanDecommission step and for `dbx-privatelink plan --destroy` / `destroy` (which show it first).

The decisions are pure functions of facts (decide_*), so the rules read as a table and are unit-tested
without AWS or Databricks; plan_decommission gathers the facts (the store, the ledger, live reads).

What the application takes down in delete mode, in dependency order: the Databricks workspace (when it made
it), the workspace's networks and private access settings, then each shared resource the last workspace
using it leaves behind (registrations, VPC endpoints, Resolver rule associations, rules, endpoints and the
groups it made for them), then the rules its drift repairs added to the customer's groups. It never
deletes the customer's VPCs, subnets, security groups, hosted zones, credentials or storage configurations,
nor a resource another managed workspace still uses (the ledger's references, and every managed spec).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dbx_privatelink.decommission.claims import claim_token
from dbx_privatelink.decommission.locate import (
    adopted_endpoint_ids,
    endpoint_ids_ever,
    locate_association,
    locate_endpoints,
    locate_registrations,
    locate_resolver_endpoint,
    locate_resolver_group,
    locate_rule,
)
from dbx_privatelink.decommission.models import DecommissionPlan, PlanItem
from dbx_privatelink.decommission.rules import describe_permission, restored_permissions
from dbx_privatelink.decommission.standing import standing
from dbx_privatelink.decommission.users import (
    groups_named_by,
    keys_of_spec,
    other_specs,
    spec_users,
    users_besides,
)
from dbx_privatelink.errors import DatabricksNotFoundError, SpecInvalidError
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, VpcEndpoint, Workspace
    from dbx_privatelink.decommission import DecommissionMode
    from dbx_privatelink.decommission.locate import Located
    from dbx_privatelink.decommission.models import PlanDecommissionInput
    from dbx_privatelink.ledger import SharedRecord
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.store import Desired
    from dbx_privatelink.wiring import Deps

# The plan's order is the order things are taken down: nothing is deleted while something later in the
# list could still need it (Databricks refuses a network a workspace uses, a registration a network uses;
# Route 53 Resolver refuses a rule still associated, an endpoint rules forward through; EC2 a group an
# interface uses). Kinds only ever kept come last.
KIND_ORDER = (
    "workspace",
    "network",
    "private access settings",
    "registration",
    "vpc endpoint",
    "resolver rule association",
    "resolver rule",
    "resolver endpoint",
    "resolver security group",
    "restored security group rule",
    "credentials",
    "storage configuration",
    "security group",
    "private hosted zone association",
)
LEDGER_KINDS = {
    "registration": "registration",
    "vpc-endpoint": "vpc endpoint",
    "rule-association": "resolver rule association",
    "resolver-rule": "resolver rule",
    "resolver-endpoint": "resolver endpoint",
    "resolver-security-group": "resolver security group",
}
DETACH = "detach: nothing is deleted, the workspace keeps running on it"


def is_network_of(workspace_key: str, network_name: str) -> bool:
    """Whether the reconcile named this network for the workspace: `<key>-network-<8 hex digits>`
    (reconcile/databricks_objects.py); a key that merely starts like it is another workspace's."""
    return re.fullmatch(rf"{re.escape(workspace_key)}-network-[0-9a-f]{{8}}", network_name) is not None


def pas_name(workspace_key: str) -> str:
    return f"{workspace_key}-private-access"


def ordered(items: Iterable[PlanItem]) -> list[PlanItem]:
    """The items in dependency order (stable within a kind)."""
    rank = {kind: n for n, kind in enumerate(KIND_ORDER)}
    return sorted(items, key=lambda i: rank.get(i.kind, len(KIND_ORDER)))


# --- decisions --------------------------------------------------------------------------------------------


class SharedFacts(NamedTuple):
    """What is known of one shared resource of the workspace."""

    key: SharedKey
    located: Located
    refs: tuple[str, ...] = ()  # the ledger's references (this workspace's own included)
    spec_users: tuple[str, ...] = ()  # other managed workspaces whose spec uses it
    deleting: str = ""  # the token of a decommission that claimed it
    recorded: bool = True  # the ledger has an entry for it
    # Why its users cannot all be known (another managed workspace's spec no longer validates): then kept.
    unknown_users: str = ""


def decide_shared(workspace_key: str, mode: DecommissionMode, facts: SharedFacts, token: str) -> PlanItem:
    """Delete a shared resource only when this workspace is the last one out and the application made it."""
    kind = LEDGER_KINDS[facts.key.kind]
    used_by = users_besides(workspace_key, facts.refs, facts.spec_users)
    item = PlanItem(
        kind=kind,
        name=facts.key.key,
        ids=list(facts.located.ids),
        action="keep",
        used_by=used_by,
        shared_key=facts.key.pk,
    )
    if mode == "detach":
        still = f"; also used by {', '.join(used_by)}" if used_by else ""
        return item.model_copy(update={"reason": DETACH + still})
    if not facts.located.ids:
        # Nothing to delete; the entry (if any) is forgotten once this workspace's reference is released.
        return item.model_copy(
            update={"action": "gone", "reason": "not found: already gone", "eligible": True}
        )
    if not facts.located.made_by_app:
        return item.model_copy(update={"reason": facts.located.not_ours})
    if facts.deleting and facts.deleting != token:
        return item.model_copy(update={"reason": f"being deleted by {facts.deleting}", "eligible": False})
    if used_by:
        return item.model_copy(update={"reason": f"still used by {', '.join(used_by)}", "eligible": True})
    if facts.unknown_users:
        return item.model_copy(update={"reason": facts.unknown_users, "eligible": False})
    return item.model_copy(
        update={
            "action": "delete",
            "reason": "made by this application; no other workspace uses it",
            "eligible": True,
        }
    )


def decide_workspace(
    spec: WorkspaceSpec, workspace: Workspace | None, mode: DecommissionMode, delete_existing: bool
) -> PlanItem:
    """The Databricks workspace: deleted (and awaited) in delete mode; a retrofitted one only when asked."""
    target = spec.databricks.workspace
    name = workspace.workspace_name if workspace else (target.name or str(target.existing_workspace_id))
    item = PlanItem(
        kind="workspace", name=name, ids=[str(workspace.workspace_id)] if workspace else [], action="keep"
    )
    if mode == "detach":
        return item.model_copy(update={"reason": "detach: the workspace keeps running, unmanaged"})
    if workspace is None:
        return item.model_copy(update={"action": "gone", "reason": "not found: already gone"})
    if target.existing_workspace_id is not None and not delete_existing:
        return item.model_copy(
            update={
                "reason": "existed before this application: pass --delete-existing-workspace to delete it"
            }
        )
    why = (
        "existed before this application; deleted as asked (--delete-existing-workspace)"
        if target.existing_workspace_id is not None
        else "made by this application (databricks.workspace.name)"
    )
    return item.model_copy(
        update={"action": "delete", "reason": why + "; deleted first, then awaited until gone"}
    )


def decide_networks(
    workspace_key: str,
    mode: DecommissionMode,
    networks: Sequence[Network],
    recorded_id: str | None,
    workspace_id: int | None,
) -> list[PlanItem]:
    """The workspace's networks (the recorded one, and every network named for it: both workspace sets,
    leftovers of interrupted runs): deleted once no other workspace uses them."""
    mine = [
        n for n in networks if n.network_id == recorded_id or is_network_of(workspace_key, n.network_name)
    ]
    items: list[PlanItem] = []
    for n in sorted(mine, key=lambda n: n.network_name):
        item = PlanItem(kind="network", name=n.network_name, ids=[n.network_id], action="keep")
        if mode == "detach":
            items.append(item.model_copy(update={"reason": DETACH}))
        elif n.workspace_id is not None and n.workspace_id != workspace_id:
            items.append(
                item.model_copy(
                    update={"reason": f"used by workspace {n.workspace_id}", "used_by": [str(n.workspace_id)]}
                )
            )
        else:
            items.append(
                item.model_copy(
                    update={"action": "delete", "reason": "made by this application for this workspace"}
                )
            )
    if recorded_id and not any(n.network_id == recorded_id for n in mine):
        items.append(
            PlanItem(kind="network", ids=[recorded_id], action="gone", reason="not found: already gone")
        )
    return items


def decide_private_access_settings(
    workspace_key: str,
    mode: DecommissionMode,
    settings: Sequence[PrivateAccessSettings],
    recorded_id: str | None,
    users: dict[str, list[int]],
    workspace_id: int | None,
) -> list[PlanItem]:
    """The workspace's private access settings: deleted once no other workspace uses them."""
    mine = [
        p
        for p in settings
        if p.private_access_settings_id == recorded_id
        or p.private_access_settings_name == pas_name(workspace_key)
    ]
    items: list[PlanItem] = []
    for p in mine:
        others = [w for w in users.get(p.private_access_settings_id, []) if w != workspace_id]
        item = PlanItem(
            kind="private access settings",
            name=p.private_access_settings_name,
            ids=[p.private_access_settings_id],
            action="keep",
        )
        if mode == "detach":
            items.append(item.model_copy(update={"reason": DETACH}))
        elif others:
            used = [str(w) for w in others]
            items.append(
                item.model_copy(update={"reason": f"used by workspace {', '.join(used)}", "used_by": used})
            )
        else:
            items.append(
                item.model_copy(
                    update={"action": "delete", "reason": "made by this application for this workspace"}
                )
            )
    if recorded_id and not mine:
        items.append(
            PlanItem(
                kind="private access settings",
                ids=[recorded_id],
                action="gone",
                reason="not found: already gone",
            )
        )
    return items


def decide_restored_rules(
    mode: DecommissionMode,
    group_id: str,
    described: list[str],
    other_users: list[str],
    unknown_users: str = "",
) -> PlanItem | None:
    """Rules the application's drift repairs added to a customer's group: removed with the last workspace
    whose spec names the group (the group itself is the customer's and stays); kept while some workspace's
    spec cannot be read (`unknown_users`: why)."""
    if not described:
        return None
    item = PlanItem(
        kind="restored security group rule", name=group_id, ids=described, action="keep", used_by=other_users
    )
    if mode == "detach":
        return item.model_copy(update={"reason": DETACH})
    if other_users:
        return item.model_copy(update={"reason": f"the group also serves {', '.join(other_users)}"})
    if unknown_users:
        return item.model_copy(update={"reason": unknown_users})
    return item.model_copy(
        update={
            "action": "delete",
            "reason": "added by the application's drift repair; the group itself is yours and stays",
        }
    )


def kept_as_yours(spec: WorkspaceSpec) -> list[PlanItem]:
    """What the spec names that was the customer's before the application: never touched."""
    items = [
        PlanItem(
            kind="credentials",
            ids=[spec.databricks.credentials_id],
            action="keep",
            reason="yours: named in the spec",
        ),
        PlanItem(
            kind="storage configuration",
            ids=[spec.databricks.storage_configuration_id],
            action="keep",
            reason="yours: named in the spec",
        ),
    ]
    dns = spec.dns
    named_groups = []
    if dns and dns.custom_dns and dns.custom_dns.resolver_security_group_id:
        named_groups.append(dns.custom_dns.resolver_security_group_id)
    if dns and dns.inbound:
        named_groups += [
            g
            for g in [dns.inbound.security_group_id, *(p.security_group_id for p in dns.inbound.peered_vpcs)]
            if g
        ]
    items += [
        PlanItem(
            kind="security group",
            ids=[g],
            action="keep",
            reason="yours: named in the spec for a Resolver endpoint",
        )
        for g in named_groups
    ]
    for zone in dns.private_zones if dns else []:
        items.append(
            PlanItem(
                kind="private hosted zone association",
                name=zone.hosted_zone_id,
                ids=list(zone.vpc_ids),
                action="keep",
                reason="yours: the application never disassociates a zone",
            )
        )
    return items


# --- gathering the facts -----------------------------------------------------------------------------------


class _Databricks:
    def __init__(self, workspace: Workspace | None = None) -> None:
        self.workspace = workspace
        self.networks: list[Network] = []
        self.settings: list[PrivateAccessSettings] = []
        self.registrations: list[VpcEndpoint] = []
        self.pas_users: dict[str, list[int]] = {}


def find_workspace(
    client: DatabricksAccountClient, spec: WorkspaceSpec, observed: dict[str, Any]
) -> Workspace | None:
    """The workspace of the spec, if it exists: named in the spec, recorded, or found by name."""
    target = spec.databricks.workspace
    for workspace_id in (target.existing_workspace_id, observed.get("workspace_id")):
        if workspace_id:
            try:
                return client.get_workspace(int(workspace_id))
            except DatabricksNotFoundError:
                continue
    if target.existing_workspace_id is not None:
        return None
    return next(
        (
            w
            for w in client.list_workspaces()
            if w.workspace_name == target.name and w.aws_region in (None, spec.region)
        ),
        None,
    )


def _read_databricks(
    client: DatabricksAccountClient, spec: WorkspaceSpec, observed: dict[str, Any]
) -> _Databricks:
    found = _Databricks(workspace=find_workspace(client, spec, observed))
    found.networks = client.list_networks()
    found.settings = [p for p in client.list_private_access_settings() if p.region == spec.region]
    found.registrations = client.list_vpc_endpoints()
    for w in client.list_workspaces():
        if w.private_access_settings_id:
            found.pas_users.setdefault(w.private_access_settings_id, []).append(w.workspace_id)
    return found


def workspace_keys(spec: WorkspaceSpec, observed: dict[str, Any], deps: Deps) -> list[SharedKey]:
    """The shared resources the workspace refers to: what its last run recorded, and what its spec uses."""
    recorded = {SharedKey.from_pk(str(pk)) for pk in observed.get("shared") or []}
    return sorted(recorded | keys_of_spec(spec, deps.catalog))


def locate(
    key: SharedKey,
    deps: Deps,
    spec: WorkspaceSpec,
    registrations: list[VpcEndpoint],
    record: SharedRecord | None,
    adopted: set[str],
    resolver: ResolverClient | None,
) -> Located:
    """The live resources behind one of the workspace's keys."""
    owner = deps.settings.owner_tag
    if key.kind == "vpc-endpoint":
        return locate_endpoints(deps.ec2(spec.region), owner, key, adopted)
    if key.kind == "registration":
        aws_ids = endpoint_ids_ever(deps.ec2(spec.region), owner, SharedKey("vpc-endpoint", key.key))
        hints = {record.resource_id} if record and record.resource_id else set()
        return locate_registrations(registrations, aws_ids, hints, spec.region)
    assert resolver is not None
    if key.kind == "resolver-endpoint":
        return locate_resolver_endpoint(resolver, owner, key)
    if key.kind == "resolver-security-group":
        return locate_resolver_group(resolver, owner, key)
    if key.kind == "resolver-rule":
        return locate_rule(resolver, owner, key)
    return locate_association(resolver, owner, key)


def plan_decommission(
    workspace_key: str,
    mode: DecommissionMode,
    deps: Deps,
    databricks: DatabricksAccountClient | None,
    *,
    delete_existing_workspace: bool = False,
    resolver: ResolverClient | None = None,
) -> DecommissionPlan:
    """Every resource of the workspace with delete / keep / gone and why (read-only)."""
    store = deps.store
    desired = store.get_desired(workspace_key)
    status, reason, spec = standing(workspace_key, desired, mode, delete_existing_workspace)
    plan = DecommissionPlan(workspace_key=workspace_key, mode=mode, status=status, reason=reason)
    if desired is None or spec is None:
        return plan
    observed = store.get_observed(workspace_key) or {}
    others = store.list_desired()
    token = claim_token(workspace_key)
    items: list[PlanItem] = []

    facts = _Databricks()
    if databricks is not None:
        facts = _read_databricks(databricks, spec, observed)
        items.append(decide_workspace(spec, facts.workspace, mode, delete_existing_workspace))
        workspace_id = facts.workspace.workspace_id if facts.workspace else None
        items += decide_networks(
            workspace_key, mode, facts.networks, observed.get("network_id"), workspace_id
        )
        items += decide_private_access_settings(
            workspace_key,
            mode,
            facts.settings,
            observed.get("private_access_settings_id"),
            facts.pas_users,
            workspace_id,
        )
    else:
        plan.notes.append(
            "Databricks not read: the workspace, networks, private access settings and registrations are not planned"
        )

    records = {r.shared_key: r for r in deps.ledger.list_shared()}
    readable = other_specs(others, workspace_key)
    users = spec_users(readable, deps.catalog)
    unknown_users = readable.unknown_users() if mode == "delete" else ""
    if unknown_users:
        plan.notes.append(f"nothing shared is deleted: {unknown_users}")
    adopted = {i for d in others.values() for i in _adopted(d)} | adopted_endpoint_ids(spec)
    keys = workspace_keys(spec, observed, deps)
    if resolver is None and any(k.kind.startswith(("resolver", "rule")) for k in keys):
        resolver = deps.resolver(spec.region)
    for key in keys:
        if key.kind == "registration" and databricks is None:
            continue
        record = records.get(key)
        located = locate(key, deps, spec, facts.registrations, record, adopted, resolver)
        items.append(
            decide_shared(
                workspace_key,
                mode,
                SharedFacts(
                    key=key,
                    located=located,
                    refs=record.refs if record else (),
                    spec_users=tuple(users.get(key, [])),
                    deleting=record.deleting if record else "",
                    recorded=record is not None,
                    unknown_users=unknown_users,
                ),
                token,
            )
        )

    named = groups_named_by(readable)
    ec2 = deps.ec2(spec.region)
    net = spec.network
    for group in sorted({*net.all_workspace_security_group_ids(), net.endpoint_security_group_id}):
        permissions = ec2.group_permissions(group) or {}
        described = [
            describe_permission(direction, p)
            for direction in ("ingress", "egress")
            for p in restored_permissions(permissions.get(direction, []))
        ]
        item = decide_restored_rules(mode, group, described, named.get(group, []), unknown_users)
        if item is not None:
            items.append(item)
    items += kept_as_yours(spec)
    plan.items = ordered(items)
    if mode == "detach":
        plan.notes.append(
            "detach: drift stops for this workspace and its records stay as history; its references in the "
            "ledger stay too, so no other workspace's decommission takes what it still uses"
        )
    return plan


def _adopted(desired: Desired) -> set[str]:
    try:
        return adopted_endpoint_ids(parse_spec(desired.spec))
    except (
        SpecInvalidError
    ):  # then OtherSpecs.unreadable names it (unless decommissioned): nothing shared goes
        return set()


def plan_step(inp: PlanDecommissionInput, deps: Deps) -> DecommissionPlan:
    """The plan of a decommission in delete mode, with the lease held (read-only)."""
    ctx = inp.context
    return plan_decommission(
        ctx.workspace_key,
        ctx.mode,
        deps,
        deps.databricks(ctx.account_id),
        delete_existing_workspace=ctx.delete_existing_workspace,
    )
