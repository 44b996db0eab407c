"""Deleting on the Databricks side: the workspace (asynchronous: awaited until GET answers 404), then its
networks and private access settings, then the registrations the workspace was the last to use.

Databricks refuses to delete what something still uses (INVALID_STATE "Unable to delete, Network is being
used by active workspace ...", sometimes a 409 with an empty body): that is "not yet" in a bounded
Wait -> Delete -> Choice loop, never success. Every delete is idempotent: 404 means already gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.claims import claimed_of
from dbx_privatelink.decommission.models import DeletionProgress, PlanItem
from dbx_privatelink.decommission.polling import RELEASED, WORKSPACE_GONE
from dbx_privatelink.errors import (
    DatabricksAlreadyExistsError,
    DatabricksConflictError,
    DatabricksNotFoundError,
    DatabricksRequestError,
    ResourcesStillInUseTimeoutError,
    WorkspaceNotDeletedTimeoutError,
)
from dbx_privatelink.models.base import PollState
from dbx_privatelink.reconcile.polling import poll_until_settled
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.decommission.models import DeletionInput
    from dbx_privatelink.wiring import Deps


def refused_as_in_use(exc: DatabricksRequestError) -> bool:
    """A delete Databricks refused because something still uses the object: INVALID_STATE, or a 409
    (with or without a body) that is not RESOURCE_ALREADY_EXISTS."""
    if isinstance(exc, DatabricksConflictError) and not isinstance(exc, DatabricksAlreadyExistsError):
        return True
    return exc.error_code == "INVALID_STATE"


def _done() -> DeletionProgress:
    return DeletionProgress(poll=PollState(ready=True, wait_seconds=0, detail="nothing to delete"))


def delete_workspace(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Start deleting the workspace the plan deletes; a workspace already gone, or already being deleted,
    is fine (CheckWorkspaceGone waits for it)."""
    ids = inp.plan.ids_to_delete("workspace") if inp.plan else []
    if not ids:
        return _done()
    client = deps.databricks(inp.context.account_id)
    for workspace_id in ids:
        try:
            client.delete_workspace(int(workspace_id))
        except DatabricksNotFoundError:
            continue
        except DatabricksRequestError as exc:
            if not refused_as_in_use(exc):  # a deletion already under way may refuse a second DELETE
                raise
    return DeletionProgress(
        poll=PollState(ready=True, wait_seconds=0, detail=f"deletion of workspace {', '.join(ids)} started")
    )


def check_workspace_gone(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Ready once GET answers 404 for the deleted workspace (its network and private access settings can
    only go after that)."""
    ids = inp.plan.ids_to_delete("workspace") if inp.plan else []
    client = deps.databricks(inp.context.account_id)
    waiting: list[str] = []
    for workspace_id in ids:
        try:
            w = client.get_workspace(int(workspace_id))
        except DatabricksNotFoundError:
            continue
        waiting.append(
            f"workspace {workspace_id} is still there ({w.workspace_status}: {w.workspace_status_message or 'being deleted'})"
        )
    return DeletionProgress(
        poll=poll_until_settled(
            inp.poll,
            waiting,
            settled="the workspace is gone",
            policy=WORKSPACE_GONE,
            timeout=WorkspaceNotDeletedTimeoutError,
        )
    )


def _delete(client: DatabricksAccountClient, kind: str, object_id: str, waiting: list[str]) -> None:
    """One delete: gone is fine, refused as in use is waited for."""
    delete = {
        "network": client.delete_network,
        "private access settings": client.delete_private_access_settings,
        "registration": client.delete_vpc_endpoint,
    }[kind]
    try:
        delete(object_id)
    except DatabricksNotFoundError:
        return
    except DatabricksRequestError as exc:
        if not refused_as_in_use(exc):
            raise
        waiting.append(f"{kind} {object_id} is still in use: {str(exc).splitlines()[0]}")


def delete_databricks_objects(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the workspace's networks and private access settings; one attached to another workspace
    since the plan was made is kept."""
    plan = inp.plan
    if plan is None:
        return _done()
    client = deps.databricks(inp.context.account_id)
    ours = {int(i) for item in plan.items if item.kind == "workspace" for i in item.ids}
    waiting: list[str] = []
    kept: list[PlanItem] = []
    for network_id in plan.ids_to_delete("network"):
        try:
            network = client.get_network(network_id)
        except DatabricksNotFoundError:
            continue
        if network.workspace_id is not None and network.workspace_id not in ours:
            kept.append(
                PlanItem(
                    kind="network",
                    name=network.network_name,
                    ids=[network_id],
                    action="keep",
                    reason=f"used by workspace {network.workspace_id}",
                    used_by=[str(network.workspace_id)],
                )
            )
            continue
        _delete(client, "network", network_id, waiting)
    for pas_id in plan.ids_to_delete("private access settings"):
        _delete(client, "private access settings", pas_id, waiting)
    return DeletionProgress(
        poll=poll_until_settled(
            inp.poll,
            waiting,
            settled="the networks and private access settings are deleted",
            policy=RELEASED,
            timeout=ResourcesStillInUseTimeoutError,
        ),
        kept=kept,
    )


def delete_registrations(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the registrations this workspace was the last to use, and forget their ledger entries."""
    claimed = claimed_of(inp.claimed, "registration")
    if not claimed:
        return _done()
    client = deps.databricks(inp.context.account_id)
    waiting: list[str] = []
    for resource in claimed:
        before = len(waiting)
        for registration_id in resource.ids:
            _delete(client, "registration", registration_id, waiting)
        if len(waiting) == before:
            deps.ledger.forget(SharedKey("registration", resource.key), inp.context.token)
    return DeletionProgress(
        poll=poll_until_settled(
            inp.poll,
            waiting,
            settled="the registrations are deleted",
            policy=RELEASED,
            timeout=ResourcesStillInUseTimeoutError,
        )
    )
