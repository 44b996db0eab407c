"""A decommission's claims: the ledger token its steps claim shared resources with, and the claimed
resources a deleting step works on. Apart from decommission.plan and decommission.shared (which decide the
claims from the plan's users) so that the lifecycle and deleting functions do not import the planning
modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.models import PlanItem
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.decommission.models import SharedResource
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
