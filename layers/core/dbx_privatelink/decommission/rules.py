"""The rules the application's drift repairs added to the customer's security groups (the workspace sets'
groups and the endpoint group), found by their description and removed with the last workspace whose spec
names the group. The groups, and every rule the customer made, stay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.models import DeletionProgress, PlanItem
from dbx_privatelink.decommission.plan import groups_named_by, restored_permissions
from dbx_privatelink.models.base import PollState

if TYPE_CHECKING:
    from dbx_privatelink.decommission.models import DeletionInput
    from dbx_privatelink.wiring import Deps


def revoke_restored_rules(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Revoke the restored rules of each group the plan deletes them from, unless a workspace applied since
    names the group."""
    plan = inp.plan
    groups = [
        i.name
        for i in (plan.items if plan else [])
        if i.kind == "restored security group rule" and i.action == "delete"
    ]
    kept: list[PlanItem] = []
    if groups:
        named = groups_named_by(deps.store.list_desired(), inp.context.workspace_key)
        ec2 = deps.ec2(inp.context.region)
        for group_id in groups:
            if named.get(group_id):
                kept.append(
                    PlanItem(
                        kind="restored security group rule",
                        name=group_id,
                        action="keep",
                        reason=f"the group also serves {', '.join(named[group_id])}",
                        used_by=named[group_id],
                    )
                )
                continue
            permissions = ec2.group_permissions(group_id) or {}
            for direction in ("ingress", "egress"):
                ec2.revoke_permissions(
                    group_id, direction, restored_permissions(permissions.get(direction, []))
                )
    return DeletionProgress(
        poll=PollState(
            ready=True,
            wait_seconds=0,
            detail=f"restored rules removed from {len(groups) - len(kept)} group(s)",
        ),
        kept=kept,
    )
