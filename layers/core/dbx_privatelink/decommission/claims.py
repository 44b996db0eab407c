"""A decommission's claim: whether a workspace may be decommissioned (its standing), the ledger token its
steps claim shared resources with, and the claimed resources a deleting step works on. Apart from
decommission.plan and decommission.shared (which decide the claims from the plan's users) so that the
lifecycle and deleting functions do not import the planning modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.models import PlanItem
from dbx_privatelink.ledger import SharedKey
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.decommission.models import PlanStatus, SharedResource
    from dbx_privatelink.store import DecommissionMode, Desired
    from dbx_privatelink.wiring import Deps


def claimed_of(claimed: list[SharedResource], kind: str) -> list[SharedResource]:
    return [c for c in claimed if c.kind == kind]


def keep_claimed(deps: Deps, token: str, resource: SharedResource, kind_label: str, reason: str) -> PlanItem:
    """A claimed resource a deleting step found it must keep after all (something outside the workspaces
    still uses it): the claim goes back, so nothing waits on it, and the reason is reported."""
    key = SharedKey(resource.kind, resource.key)
    deps.ledger.unclaim(key, token)
    return PlanItem(
        kind=kind_label, name=resource.key, ids=resource.ids, action="keep", reason=reason, shared_key=key.pk
    )


def claim_token(workspace_key: str) -> str:
    """The ledger token of a workspace's decommission: one per workspace, so a re-run of an interrupted
    decommission takes over its own claims."""
    return f"decommission:{workspace_key}"


def standing(
    key: str, desired: Desired | None, mode: DecommissionMode, delete_existing_workspace: bool = False
) -> tuple[PlanStatus, str]:
    """(status, reason) before anything else: not_managed, already_decommissioned, refused or ready."""
    if desired is None:
        return "not_managed", f"{key} is not managed by this stack (no desired spec): nothing to decommission"
    marker = desired.decommission
    if (
        marker is not None
        and marker.state == "decommissioned"
        and (marker.mode == "delete" or mode == "detach")
    ):
        when = f" at {marker.ended_at}" if marker.ended_at else ""
        return (
            "already_decommissioned",
            f"{key} is already decommissioned ({marker.mode}{when}): nothing to do",
        )
    target = parse_spec(desired.spec).databricks.workspace
    if mode == "delete" and target.existing_workspace_id is not None and not delete_existing_workspace:
        return (
            "refused",
            f"workspace {target.existing_workspace_id} existed before this application "
            "(databricks.workspace.existing_workspace_id): delete mode would delete it. Use --mode detach to "
            "stop managing it, or pass --delete-existing-workspace to delete it and everything else",
        )
    return "ready", ""
