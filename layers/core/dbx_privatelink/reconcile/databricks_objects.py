"""Step 8: private access settings, the network object and the workspace, on the Databricks side.

Every create is find-first (by the id recorded in the store, then by name and content), because the
Account API takes no idempotency token and a create can commit before the connection drops.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from dbx_privatelink.errors import (
    DatabricksNotFoundError,
    DatabricksRequestError,
    SpecInvalidError,
    WorkspaceBusyError,
    WorkspaceFailedError,
    WorkspaceNotRunningTimeoutError,
)
from dbx_privatelink.models.databricks import (
    NetworkResult,
    PrivateAccessSettingsResult,
    RetireNetworkOutput,
    WorkspaceResult,
)
from dbx_privatelink.reconcile.polling import check_until_settled, schedule_for

if TYPE_CHECKING:
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, Workspace
    from dbx_privatelink.models.base import PollState
    from dbx_privatelink.models.databricks_steps import (
        DatabricksSpec,
        EnsureNetworkInput,
        EnsurePrivateAccessSettingsInput,
        EnsureWorkspaceInput,
    )
    from dbx_privatelink.models.endpoints import Registration
    from dbx_privatelink.models.spec_names import CheckWorkspaceRunningInput, RetireNetworkInput
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.spec_sections import WorkspaceSet
    from dbx_privatelink.wiring import Deps

    # What the Databricks object steps read (their view of the spec) or what preflight and the scan read.
    type SpecOfDatabricks = DatabricksSpec | WorkspaceSpec


def _observed(deps: Deps, key: str) -> dict[str, Any]:
    return deps.store.get_observed(key) or {}


def _reg_ids(registrations: list[Registration], *roles: str) -> list[str]:
    return sorted(r.vpc_endpoint_id for r in registrations if r.role in roles)


# --- private access settings ---


def desired_private_access_settings(spec: SpecOfDatabricks, regs: list[Registration]) -> dict[str, Any]:
    """The private access settings the spec asks for (name, region, access, allowed registrations)."""
    pa = spec.private_access
    allowed: list[str] = []
    if pa.level == "ENDPOINT":
        allowed = sorted({*_reg_ids(regs, "front_end", "workspace"), *pa.extra_allowed_vpc_endpoint_ids})
    return {
        "name": f"{spec.workspace_key}-private-access",
        "region": spec.region,
        "public_access_enabled": pa.public_access_enabled,
        "private_access_level": pa.level,
        "allowed_vpc_endpoint_ids": allowed,
    }


def _pas_matches(current: PrivateAccessSettings, desired: dict[str, Any]) -> bool:
    return bool(
        current.private_access_settings_name == desired["name"]
        and current.region == desired["region"]
        and current.public_access_enabled == desired["public_access_enabled"]
        and current.private_access_level == desired["private_access_level"]
        and sorted(current.allowed_vpc_endpoint_ids) == desired["allowed_vpc_endpoint_ids"]
    )


def ensure_private_access_settings(
    inp: EnsurePrivateAccessSettingsInput, deps: Deps
) -> PrivateAccessSettingsResult:
    """Create the private access settings, or PUT-replace them when they differ from the spec."""
    spec = inp.spec
    client = deps.databricks(spec.databricks.account_id)
    desired = desired_private_access_settings(spec, inp.registrations)
    current: PrivateAccessSettings | None = None
    known_id = _observed(deps, spec.workspace_key).get("private_access_settings_id")
    if known_id:
        try:
            current = client.get_private_access_settings(known_id)
        except DatabricksNotFoundError:
            current = None
    if current is None:
        current = next(
            (
                p
                for p in client.list_private_access_settings()
                if p.private_access_settings_name == desired["name"] and p.region == spec.region
            ),
            None,
        )
    fields = {k: v for k, v in desired.items() if k not in ("name", "region")}
    if current is None:
        created = client.create_private_access_settings(desired["name"], spec.region, **fields)
        return PrivateAccessSettingsResult(
            private_access_settings_id=created.private_access_settings_id, action="created"
        )
    if _pas_matches(current, desired):
        return PrivateAccessSettingsResult(
            private_access_settings_id=current.private_access_settings_id, action="unchanged"
        )
    client.replace_private_access_settings(
        current.private_access_settings_id, desired["name"], spec.region, **fields
    )
    return PrivateAccessSettingsResult(
        private_access_settings_id=current.private_access_settings_id, action="updated"
    )


# --- network ---


def desired_network(
    spec: SpecOfDatabricks, regs: list[Registration], on: WorkspaceSet | None = None
) -> dict[str, Any]:
    """The network object the spec asks for on one set of workspace subnets and groups (default: the primary
    set); its name carries a digest of its content, so each set has its own deterministic name."""
    chosen = on or spec.network.workspace_sets()[0]
    content = {
        "vpc_id": spec.network.vpc_id,
        "subnet_ids": sorted(chosen.subnet_ids),
        "security_group_ids": sorted(chosen.security_group_ids),
        "rest_api": _reg_ids(regs, "workspace"),
        "dataplane_relay": _reg_ids(regs, "relay"),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return {"name": f"{spec.workspace_key}-network-{digest}", "workspace_set": chosen.spec_field, **content}


def desired_networks(spec: SpecOfDatabricks, regs: list[Registration]) -> list[dict[str, Any]]:
    """The network object the spec asks for on each set it names: the primary set first, then the standby."""
    return [desired_network(spec, regs, on) for on in spec.network.workspace_sets()]


def network_matches(n: Network, desired: dict[str, Any]) -> bool:
    """The network holds the desired VPC, subnets, groups and endpoint registrations."""
    return bool(
        n.vpc_id == desired["vpc_id"]
        and sorted(n.subnet_ids) == desired["subnet_ids"]
        and sorted(n.security_group_ids) == desired["security_group_ids"]
        and sorted(n.vpc_endpoints.rest_api) == desired["rest_api"]
        and sorted(n.vpc_endpoints.dataplane_relay) == desired["dataplane_relay"]
    )


def _holds_any(n: Network, subnet_ids: list[str], group_ids: list[str]) -> bool:
    return bool(set(n.subnet_ids) & set(subnet_ids) or set(n.security_group_ids) & set(group_ids))


def networks_in_use(networks: list[Network], workspace: Workspace | None) -> list[Network]:
    """Networks attached to a workspace, and the workspace's own (attached only once it has provisioned)."""
    own = workspace.network_id if workspace is not None else None
    return [n for n in networks if n.workspace_id is not None or n.network_id == own]


def choose_network(candidates: list[dict[str, Any]], in_use: list[Network]) -> dict[str, Any]:
    """The first candidate whose subnets and groups no network in use holds (Databricks refuses to reuse
    them while that network exists); the primary one when every set is held."""
    return next(
        (
            c
            for c in candidates
            if not any(_holds_any(n, c["subnet_ids"], c["security_group_ids"]) for n in in_use)
        ),
        candidates[0],
    )


def workspace_of(
    client: DatabricksAccountClient, spec: SpecOfDatabricks, observed: dict[str, Any]
) -> Workspace | None:
    """The workspace this spec manages, if it exists: named in the spec, recorded, or found by name."""
    target = spec.databricks.workspace
    if target.existing_workspace_id is not None:
        try:
            return client.get_workspace(target.existing_workspace_id)
        except DatabricksNotFoundError:
            raise SpecInvalidError(
                f"databricks.workspace.existing_workspace_id: workspace {target.existing_workspace_id} does "
                f"not exist in account {spec.databricks.account_id}; check the id or set name to create one"
            ) from None
    if observed.get("workspace_id"):
        try:
            return client.get_workspace(int(observed["workspace_id"]))
        except DatabricksNotFoundError:
            pass
    return next(
        (
            w
            for w in client.list_workspaces()
            if w.workspace_name == target.name and w.aws_region in (None, spec.region)
        ),
        None,
    )


def leftover_networks(
    spec: SpecOfDatabricks, networks: list[Network], in_use: list[Network]
) -> list[Network]:
    """Networks no workspace uses that hold our subnets or groups (of either set): they block a new one and
    are ours to remove (left by an earlier run that stopped before it was attached or retired)."""
    used = {n.network_id for n in in_use}
    return [
        n
        for n in networks
        if n.network_id not in used
        and is_own_network(spec, n)
        and _holds_any(
            n, spec.network.all_workspace_subnet_ids(), spec.network.all_workspace_security_group_ids()
        )
    ]


def is_own_network(spec: SpecOfDatabricks, n: Network) -> bool:
    """A network this application made for the workspace (ensure_network keeps, replaces or removes it)."""
    return n.network_name.startswith(f"{spec.workspace_key}-network-")


def foreign_network_problems(
    spec: SpecOfDatabricks, networks: list[Network], workspace: Workspace | None
) -> list[str]:
    """Workspace subnets and groups another network object already holds: Databricks refuses a subnet or
    group in two network objects, so the network step would fail after the steps before it changed things.
    The workspace's own networks (made for it, or the one it uses) are not another's."""
    own = workspace.network_id if workspace is not None else None
    problems: list[str] = []
    for ws in spec.network.workspace_sets():
        for n in networks:
            if n.network_id == own or is_own_network(spec, n):
                continue
            user = f"workspace {n.workspace_id}" if n.workspace_id is not None else "no workspace"
            held = [
                (field, rid)
                for field, ids, theirs in (
                    ("workspace_subnet_ids", ws.subnet_ids, n.subnet_ids),
                    ("workspace_security_group_ids", ws.security_group_ids, n.security_group_ids),
                )
                for rid in ids
                if rid in theirs
            ]
            problems += [
                f"{ws.spec_field}.{field}: {rid} is already used by Databricks network {n.network_id} "
                f"({n.network_name}, {user}); a subnet or security group serves one network object only: "
                "use subnets and groups of their own for this workspace, or delete that network"
                for field, rid in held
            ]
    return problems


def databricks_problems(
    client: DatabricksAccountClient, spec: SpecOfDatabricks, observed: dict[str, Any]
) -> list[str]:
    """Preflight on the Databricks side, read-only: what the Databricks steps would otherwise find after the
    AWS side changed (the workspace to retrofit, the objects a new workspace needs, the registrations private
    access settings allow, subnets and groups another network holds)."""
    problems: list[str] = []
    try:
        workspace = workspace_of(client, spec, observed)
    except SpecInvalidError as exc:
        return [str(exc)]
    if workspace is None:
        if spec.databricks.workspace.name is None:
            problems.append("databricks.workspace.name: needed to create the workspace")
        for field, get in (
            ("credentials_id", client.get_credentials),
            ("storage_configuration_id", client.get_storage_configuration),
        ):
            wanted = getattr(spec.databricks, field)
            try:
                get(wanted)
            except DatabricksNotFoundError:
                problems.append(
                    f"databricks.{field}: {wanted} does not exist in account {spec.databricks.account_id}; "
                    "the new workspace needs it"
                )
    elif str(workspace.workspace_status or "") in ("BANNED", "CANCELLING"):
        problems.append(
            f"databricks.workspace: workspace {workspace.workspace_id} is {workspace.workspace_status}; it "
            "cannot be changed"
        )
    extra = spec.private_access.extra_allowed_vpc_endpoint_ids
    if extra:
        registered = {e.vpc_endpoint_id for e in client.list_vpc_endpoints()}
        problems += [
            f"private_access.extra_allowed_vpc_endpoint_ids: {rid} is not a registered VPC endpoint of account "
            f"{spec.databricks.account_id}"
            for rid in extra
            if rid not in registered
        ]
    return problems + foreign_network_problems(spec, client.list_networks(), workspace)


def ensure_network(inp: EnsureNetworkInput, deps: Deps) -> NetworkResult:
    """The network object for the spec: kept when it matches on either workspace set, else a new one on the
    set the workspace does not use (the workspace moves later, the old network is retired)."""
    spec = inp.spec
    client = deps.databricks(spec.databricks.account_id)
    candidates = desired_networks(spec, inp.registrations)
    observed = _observed(deps, spec.workspace_key)
    workspace = workspace_of(client, spec, observed)
    current_id = (workspace.network_id if workspace else None) or observed.get("network_id")
    current: Network | None = None
    if current_id:
        try:
            current = client.get_network(current_id)
        except DatabricksNotFoundError:
            current = None
    if current is not None and any(network_matches(current, c) for c in candidates):
        return NetworkResult(network_id=current.network_id, action="unchanged")
    networks = client.list_networks()
    in_use = networks_in_use(networks, workspace)
    desired = choose_network(candidates, in_use)
    match = next(
        (n for n in networks if n.network_name == desired["name"] and network_matches(n, desired)), None
    )
    replaced = current.network_id if current is not None else None
    if match is not None:
        return NetworkResult(network_id=match.network_id, action="found", replaced_network_id=replaced)
    for n in leftover_networks(spec, networks, in_use):
        client.delete_network(n.network_id)
        if replaced == n.network_id:
            replaced = None
    try:
        created = client.create_network(
            desired["name"],
            desired["vpc_id"],
            desired["subnet_ids"],
            desired["security_group_ids"],
            rest_api_endpoint_ids=desired["rest_api"],
            dataplane_relay_endpoint_ids=desired["dataplane_relay"],
        )
    except DatabricksRequestError as exc:
        if exc.error_code == "INVALID_PARAMETER_VALUE" and current is not None and current.workspace_id:
            raise SpecInvalidError(_network_blocked(spec, current, desired, exc)) from exc
        raise
    return NetworkResult(
        network_id=created.network_id,
        action="replaced" if replaced else "created",
        replaced_network_id=replaced,
    )


def _network_blocked(
    spec: SpecOfDatabricks, current: Network, desired: dict[str, Any], exc: DatabricksRequestError
) -> str:
    why = (
        f"the network must change ({exc}) but Databricks does not let one subnet or security group serve two "
        f"network objects while workspace {current.workspace_id} uses {current.network_id}"
    )
    if spec.network.standby is None:
        return (
            f"{why}; to move the workspace give it new network.workspace_subnet_ids and new "
            "network.workspace_security_group_ids, or add network.standby (a second set of workspace subnets "
            "and security groups in the VPC) so that such a repair moves the workspace by itself"
        )
    where = desired["workspace_set"]
    return (
        f"{why}; the set the new network was to use ({where}) is held by another network object: delete that "
        f"network, or give {where}.workspace_subnet_ids and {where}.workspace_security_group_ids new ids"
    )


# --- workspace ---


def ensure_workspace(inp: EnsureWorkspaceInput, deps: Deps) -> WorkspaceResult:
    """Create the workspace, or PATCH an existing one onto the network and private access settings."""
    spec = inp.spec
    client = deps.databricks(spec.databricks.account_id)
    target = spec.databricks.workspace
    workspace = workspace_of(client, spec, _observed(deps, spec.workspace_key))
    wanted = {
        "network_id": inp.network.network_id,
        "private_access_settings_id": inp.private_access_settings.private_access_settings_id,
    }
    if workspace is None:
        if target.name is None:
            raise SpecInvalidError("databricks.workspace.name: needed to create the workspace")
        created = client.create_workspace(
            target.name,
            spec.region,
            spec.databricks.credentials_id,
            spec.databricks.storage_configuration_id,
            deployment_name=target.deployment_name,
            pricing_tier=target.pricing_tier,
            custom_tags=target.custom_tags or None,
            network_id=wanted["network_id"],
            private_access_settings_id=wanted["private_access_settings_id"],
        )
        return WorkspaceResult(
            workspace_id=created.workspace_id,
            action="created",
            deployment_name=created.deployment_name,
            status=str(created.workspace_status or ""),
        )
    changes = {k: v for k, v in wanted.items() if getattr(workspace, k) != v}
    status = str(workspace.workspace_status or "")
    if not changes:
        return WorkspaceResult(
            workspace_id=workspace.workspace_id,
            action="unchanged",
            deployment_name=workspace.deployment_name,
            status=status,
        )
    if status in ("BANNED", "CANCELLING"):
        raise WorkspaceFailedError(f"workspace {workspace.workspace_id} is {status}; it cannot be changed")
    if status not in ("RUNNING", "FAILED"):
        raise WorkspaceBusyError(
            f"workspace {workspace.workspace_id} is {status}; changes wait until it settles"
        )
    updated = client.update_workspace(workspace.workspace_id, changes)
    return WorkspaceResult(
        workspace_id=updated.workspace_id,
        action="updated",
        deployment_name=updated.deployment_name,
        status=str(updated.workspace_status or ""),
    )


def _failure_text(client: DatabricksAccountClient, w: Workspace) -> str:
    parts = [
        f"workspace {w.workspace_id} is {w.workspace_status}: {w.workspace_status_message or 'no message'}"
    ]
    if w.network_id:
        try:
            n = client.get_network(w.network_id)
        except DatabricksNotFoundError:
            return parts[0]
        parts += [
            f"network {n.network_id} ({n.vpc_status}) {m.error_type}: {m.error_message}"
            for m in n.error_messages
        ]
    return "; ".join(parts)


def check_workspace_running(inp: CheckWorkspaceRunningInput, deps: Deps) -> PollState:
    """Ready once the workspace is RUNNING; FAILED or BANNED ends the run with the network's messages."""
    spec = inp.spec
    client = deps.databricks(spec.databricks.account_id)
    # A PATCH provisions again in about half the time a create takes.
    policy = schedule_for(
        inp.poll,
        "workspace_updated" if inp.workspace.action == "updated" else "workspace_created",
        deps.settings.poll_expected_seconds,
    )

    def waiting() -> list[str]:
        w = client.get_workspace(inp.workspace.workspace_id)
        status = str(w.workspace_status or "")
        if status in ("FAILED", "BANNED"):
            raise WorkspaceFailedError(_failure_text(client, w))
        return [] if status == "RUNNING" else [f"workspace {w.workspace_id} is {status}"]

    return check_until_settled(
        inp.poll,
        waiting,
        settled=f"workspace {inp.workspace.workspace_id} is RUNNING",
        policy=policy,
        timeout=WorkspaceNotRunningTimeoutError,
        deps=deps,
    )


def retire_network(inp: RetireNetworkInput, deps: Deps) -> RetireNetworkOutput:
    """Delete the network the workspace moved away from, once no workspace uses it."""
    old = inp.network.replaced_network_id
    if not old or old == inp.network.network_id:
        return RetireNetworkOutput()
    client = deps.databricks(inp.spec.databricks.account_id)
    try:
        n = client.get_network(old)
    except DatabricksNotFoundError:
        return RetireNetworkOutput()
    if n.workspace_id is not None:
        return RetireNetworkOutput()  # still attached somewhere: not ours to delete
    try:
        client.delete_network(old)
    except DatabricksNotFoundError:
        return RetireNetworkOutput()
    return RetireNetworkOutput(deleted_network_id=old)
