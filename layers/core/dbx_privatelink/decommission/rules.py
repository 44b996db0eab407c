"""The rules the application's drift repairs added to the customer's security groups (the workspace sets'
groups and the endpoint group), found by their description and removed with the last workspace whose spec
names the group. The groups, and every rule the customer made, stay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbx_privatelink.decommission.models import DeletionProgress, PlanItem
from dbx_privatelink.decommission.users import groups_named_by, other_specs
from dbx_privatelink.models.base import PollState
from dbx_privatelink.reconcile.shared import RESTORED_RULE_DESCRIPTION

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
        others = other_specs(deps.store.list_desired(), inp.context.workspace_key)
        named = groups_named_by(others)
        ec2 = deps.ec2(inp.context.region)
        for group_id in groups:
            users = named.get(group_id) or sorted(others.unreadable)
            if users:
                reason = (
                    f"the group also serves {', '.join(users)}"
                    if named.get(group_id)
                    else others.unknown_users()
                )
                kept.append(
                    PlanItem(
                        kind="restored security group rule",
                        name=group_id,
                        action="keep",
                        reason=reason,
                        used_by=users,
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


def restored_permissions(permissions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of a group's raw permissions, exactly the parts a drift repair added (by their description): each
    permission cut down to its described ranges and group pairs, ready to revoke."""
    found: list[dict[str, Any]] = []
    for p in permissions:
        ranges = [r for r in p.get("IpRanges", []) if r.get("Description") == RESTORED_RULE_DESCRIPTION]
        pairs = [
            {"GroupId": g["GroupId"]}
            for g in p.get("UserIdGroupPairs", [])
            if g.get("Description") == RESTORED_RULE_DESCRIPTION and g.get("GroupId")
        ]
        if not ranges and not pairs:
            continue
        cut: dict[str, Any] = {"IpProtocol": p.get("IpProtocol", "-1")}
        if p.get("FromPort") is not None:
            cut.update(FromPort=p["FromPort"], ToPort=p.get("ToPort"))
        if ranges:
            cut["IpRanges"] = [{"CidrIp": r["CidrIp"]} for r in ranges]
        if pairs:
            cut["UserIdGroupPairs"] = pairs
        found.append(cut)
    return found


def describe_permission(direction: str, p: dict[str, Any]) -> str:
    """One restored rule in words: "egress tcp 443 to 0.0.0.0/0"."""
    ports = (
        "all"
        if p.get("FromPort") in (None, -1)
        else (
            str(p["FromPort"]) if p["FromPort"] == p.get("ToPort") else f"{p['FromPort']}-{p.get('ToPort')}"
        )
    )
    peers = [r["CidrIp"] for r in p.get("IpRanges", [])] + [
        g["GroupId"] for g in p.get("UserIdGroupPairs", [])
    ]
    return f"{direction} {p.get('IpProtocol')} {ports} {'to' if direction == 'egress' else 'from'} {', '.join(peers)}"
