"""Deleting the VPC endpoints the workspace was the last to use (interface and gateway: a gateway endpoint's
route-table entries go with it), on the stack's shared pace of EC2 endpoint mutations.

All of them go in one DeleteVpcEndpoints call (one token of EC2's bucket of 4, refilled 0.3/s): the call
waits for its slot on the shared schedule, inline when it is near, else as a ticket the state machine
carries through a Wait state (DeleteEndpoints -> EndpointsDeleted -> WaitForEndpointSlot), as the
reconcile's EnsureEndpoint does. Then the loop waits until EC2 reports every one deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.claims import claimed_of
from dbx_privatelink.decommission.models import DeletionProgress
from dbx_privatelink.decommission.polling import RELEASED
from dbx_privatelink.errors import ResourcesStillInUseTimeoutError
from dbx_privatelink.models.base import PacingState, PollState
from dbx_privatelink.pacing import Ticket, pace_mutations
from dbx_privatelink.reconcile.polling import poll_until_settled
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.decommission.models import DeletionInput
    from dbx_privatelink.pacing import PaceDecision
    from dbx_privatelink.wiring import Deps


def _ticket(pacing: PacingState) -> Ticket | None:
    if pacing.ticket_start is None or pacing.ticket_count < 1:
        return None
    return Ticket(start=pacing.ticket_start, calls=pacing.ticket_count)


def _wait(decision: PaceDecision) -> PacingState:
    ticket = decision.ticket
    return PacingState(
        wait_seconds=decision.wait_seconds,
        ticket_start=ticket.start if ticket else None,
        ticket_count=ticket.calls if ticket else 0,
    )


def delete_endpoints(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the claimed endpoints that are not on their way out yet, then report the ones still
    deleting; each key whose endpoints are all deleted is forgotten in the ledger."""
    claimed = claimed_of(inp.claimed, "vpc-endpoint")
    if not claimed:
        return DeletionProgress(poll=PollState(ready=True, wait_seconds=0, detail="no endpoint to delete"))
    ec2 = deps.ec2(inp.context.region)
    ids = sorted({i for c in claimed for i in c.ids})
    live = ec2.get_endpoints(ids)
    to_delete = [i for i in ids if i in live and live[i].state.lower() not in ("deleted", "deleting")]
    failed: dict[str, str] = {}
    if to_delete:
        decision = pace_mutations(deps.endpoint_pacer(inp.context.region), 1, _ticket(inp.pacing))
        if not decision.go:
            return DeletionProgress(poll=inp.poll, pacing=_wait(decision))
        failed = ec2.delete_endpoints(to_delete)
        live = ec2.get_endpoints(ids)
    waiting: list[str] = []
    for resource in claimed:
        still = [
            f"endpoint {i} is {live[i].state}" + (f" ({failed[i]})" if i in failed else "")
            for i in resource.ids
            if i in live and live[i].state.lower() != "deleted"
        ]
        if still:
            waiting += still
        else:
            deps.ledger.forget(SharedKey("vpc-endpoint", resource.key), inp.context.token)
    return DeletionProgress(
        poll=poll_until_settled(
            inp.poll,
            waiting,
            settled="the endpoints are deleted",
            policy=RELEASED,
            timeout=ResourcesStillInUseTimeoutError,
        )
    )
