"""The decommission's first step: say whether there is anything to decommission, then mark the workspace and
take its lease.

The marker (store.DecommissionMarker on the desired spec) is written before the lease is taken: from then
on drift starts nothing for the workspace, so a reconcile that holds the lease now is the last one before
the decommission, and the decommission waits for it (Wait -> BeginDecommission -> Choice, bounded). The
lease is then held to the end: a reconcile started meanwhile (by an apply) finds it held and hands over,
and the decommission releases it without a rerun (lifecycle.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.aws.executions import holder_running
from dbx_privatelink.decommission.claims import claim_token
from dbx_privatelink.decommission.models import DecommissionContext
from dbx_privatelink.decommission.polling import LEASE_FREED
from dbx_privatelink.decommission.run_models import BeginDecommissionOutput
from dbx_privatelink.decommission.standing import standing
from dbx_privatelink.errors import DecommissionRefusedError, LeaseNotFreedTimeoutError
from dbx_privatelink.reconcile.polling import next_poll

if TYPE_CHECKING:
    from dbx_privatelink.decommission.run_models import BeginDecommissionInput
    from dbx_privatelink.wiring import Deps


def begin_decommission(inp: BeginDecommissionInput, deps: Deps) -> BeginDecommissionOutput:
    """Say whether there is anything to decommission (changing nothing when there is not), then mark the
    workspace and take its lease, or say when to try again."""
    request, store = inp.request, deps.store
    key = request.workspace_key
    desired = store.get_desired(key)
    status, reason, spec = standing(key, desired, request.mode, request.delete_existing_workspace)
    if status == "not_managed" or status == "already_decommissioned":
        return BeginDecommissionOutput(outcome=status, reason=reason)
    if status == "refused":
        raise DecommissionRefusedError(reason)
    assert desired is not None and spec is not None
    now = int(deps.clock())
    marker = desired.decommission
    running_elsewhere = (
        marker is not None
        and marker.state == "decommissioning"
        and marker.execution_name != inp.execution_name
        and not marker.clearable(now)
        and holder_running(deps.sfn, marker.execution_arn)
    )
    # Another decommission of this workspace runs: it keeps its marker, this one waits for the lease.
    if not running_elsewhere and (
        marker is None or marker.execution_name != inp.execution_name or marker.state != "decommissioning"
    ):
        store.mark_decommissioning(key, request.mode, inp.execution_name, inp.execution_arn, now)
    attempt = store.acquire_lease(key, inp.execution_name, inp.execution_arn, now)
    if not attempt.acquired and attempt.holder and not holder_running(deps.sfn, attempt.holder.holder_arn):
        attempt = store.acquire_lease(
            key, inp.execution_name, inp.execution_arn, now, take_over_from=attempt.holder.holder
        )
    context = DecommissionContext(
        workspace_key=key,
        mode=request.mode,
        region=spec.region,
        account_id=spec.databricks.account_id,
        token=claim_token(key),
        spec=spec.model_dump(mode="json"),
        delete_existing_workspace=request.delete_existing_workspace,
    )
    if attempt.acquired:
        return BeginDecommissionOutput(outcome="proceed", context=context, poll=inp.poll)
    holder = attempt.holder.holder if attempt.holder else "another execution"
    poll = next_poll(
        inp.poll,
        ready=False,
        detail=f"execution {holder} holds the lease of {key}; the decommission waits for it to end",
        policy=LEASE_FREED,
        timeout=LeaseNotFreedTimeoutError,
    )
    return BeginDecommissionOutput(outcome="wait", reason=poll.detail, context=context, poll=poll)
