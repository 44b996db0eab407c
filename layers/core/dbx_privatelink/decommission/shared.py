"""Leaving the shared resources: release the workspace's references, and claim what it is the last to use.

The plan said which shared resources the application made (eligible) and who used them then; by the time
the workspace and its Databricks objects are gone, others may have joined or left. So the decision is made
again here from the references as they are after this workspace's are released: a resource nobody refers
to (and no managed spec names) is claimed, which makes every later reference wait until it is deleted and
forgotten; one still referred to is kept and reported with its users. The last workspace out takes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.models import (
    PlanItem,
    ReleaseSharedOutput,
    SharedResource,
)
from dbx_privatelink.decommission.users import other_specs, spec_users, users_besides
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.decommission.models import (
        ReleaseSharedInput,
    )
    from dbx_privatelink.wiring import Deps


def release_shared_resources(inp: ReleaseSharedInput, deps: Deps) -> ReleaseSharedOutput:
    """Release the workspace's references and claim each shared resource it is the last to use."""
    ctx, ledger = inp.context, deps.ledger
    key, token = ctx.workspace_key, ctx.token
    shared = [i for i in inp.plan.items if i.shared_key]
    keys = [SharedKey.from_pk(i.shared_key) for i in shared]
    released = ledger.release(key, keys)
    readable = other_specs(deps.store.list_desired(), key)
    users = spec_users(readable, deps.catalog)
    # A workspace applied since the plan whose spec cannot be read: what it uses is unknown, nothing goes.
    unknown_users = readable.unknown_users()
    out = ReleaseSharedOutput()
    for item in shared:
        if not item.eligible:
            continue  # not the application's (adopted, foreign) or another decommission's: kept as planned
        shared_key = SharedKey.from_pk(item.shared_key)
        record = released.get(shared_key) or ledger.get(shared_key)
        others = users_besides(key, record.refs if record else (), users.get(shared_key, []))
        if others:
            out.kept.append(_kept(item, f"still used by {', '.join(others)}", others))
            continue
        if unknown_users:
            out.kept.append(_kept(item, unknown_users, sorted(readable.unreadable)))
            continue
        if record is None:
            if item.action == "gone":
                continue  # nothing to delete and no entry to forget
            # Never recorded (a workspace applied before the ledger): an entry to claim, with no reference.
            ledger.refer(key, [shared_key])
            ledger.release(key, [shared_key])
        if not ledger.claim(shared_key, token):
            now = ledger.get(shared_key)
            why = (
                f"being deleted by {now.deleting}"
                if now and now.deleting
                else f"referred to meanwhile by {', '.join(now.refs) if now else 'another workspace'}"
            )
            out.kept.append(_kept(item, why, list(now.refs) if now else []))
            continue
        if item.action == "gone":
            ledger.forget(shared_key, token)
            continue
        out.claimed.append(SharedResource(kind=shared_key.kind, key=shared_key.key, ids=item.ids))
    return out


def _kept(item: PlanItem, reason: str, used_by: list[str]) -> PlanItem:
    return item.model_copy(update={"action": "keep", "reason": reason, "used_by": used_by})
