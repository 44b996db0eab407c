"""Whether a workspace has anything to decommission, and whether it may be: the first thing both the plan and
BeginDecommission say. Apart from begin.py, so that the plan does not load BeginDecommission's models."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dbx_privatelink.spec import WorkspaceSpec, parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.decommission import DecommissionMode
    from dbx_privatelink.decommission.models import PlanStatus
    from dbx_privatelink.store import Desired


class Standing(NamedTuple):
    status: PlanStatus
    reason: str
    # The desired spec, parsed once for the caller (None when there is none, or it was decommissioned).
    spec: WorkspaceSpec | None = None


def standing(
    key: str, desired: Desired | None, mode: DecommissionMode, delete_existing_workspace: bool = False
) -> Standing:
    """(status, reason, spec) before anything else: not_managed, already_decommissioned, refused or ready."""
    if desired is None:
        return Standing(
            "not_managed", f"{key} is not managed by this stack (no desired spec): nothing to decommission"
        )
    marker = desired.decommission
    if (
        marker is not None
        and marker.state == "decommissioned"
        and (marker.mode == "delete" or mode == "detach")
    ):
        when = f" at {marker.ended_at}" if marker.ended_at else ""
        return Standing(
            "already_decommissioned",
            f"{key} is already decommissioned ({marker.mode}{when}): nothing to do",
        )
    spec = parse_spec(desired.spec)
    target = spec.databricks.workspace
    if mode == "delete" and target.existing_workspace_id is not None and not delete_existing_workspace:
        return Standing(
            "refused",
            f"workspace {target.existing_workspace_id} existed before this application "
            "(databricks.workspace.existing_workspace_id): delete mode would delete it. Use --mode detach to "
            "stop managing it, or pass --delete-existing-workspace to delete it and everything else",
            spec,
        )
    return Standing("ready", "", spec)
