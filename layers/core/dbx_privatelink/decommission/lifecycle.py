"""The decommission's first and last steps: mark the workspace and take its lease, plan, record the outcome.

The marker (store.DecommissionMarker on the desired spec) is written before the lease is taken: from then
on drift starts nothing for the workspace, so a reconcile that holds the lease now is the last one before
the decommission, and the decommission waits for it (Wait -> BeginDecommission -> Choice, bounded). The
lease is then held to the end: a reconcile started meanwhile (by an apply) finds it held and hands over,
and the decommission releases it without a rerun.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbx_privatelink.aws.executions import holder_running
from dbx_privatelink.decommission.claims import claim_token
from dbx_privatelink.decommission.models import (
    BeginDecommissionOutput,
    DecommissionContext,
    DecommissionSummary,
    RecordDecommissionFailureOutput,
)
from dbx_privatelink.decommission.polling import LEASE_FREED
from dbx_privatelink.errors import DecommissionRefusedError, LeaseNotFreedTimeoutError, human_cause
from dbx_privatelink.reconcile.polling import next_poll
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import LEASE_TTL_SECONDS, DecommissionMarker, RunRecord, now_iso

if TYPE_CHECKING:
    from dbx_privatelink.decommission import DecommissionMode
    from dbx_privatelink.decommission.models import (
        BeginDecommissionInput,
        DecommissionRun,
        FinishDecommissionInput,
        PlanItem,
        PlanStatus,
        RecordDecommissionFailureInput,
    )
    from dbx_privatelink.store import Desired
    from dbx_privatelink.wiring import Deps


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


def begin_decommission(inp: BeginDecommissionInput, deps: Deps) -> BeginDecommissionOutput:
    """Say whether there is anything to decommission (changing nothing when there is not), then mark the
    workspace and take its lease, or say when to try again."""
    request, store = inp.request, deps.store
    key = request.workspace_key
    desired = store.get_desired(key)
    status, reason = standing(key, desired, request.mode, request.delete_existing_workspace)
    if status == "not_managed" or status == "already_decommissioned":
        return BeginDecommissionOutput(outcome=status, reason=reason)
    if status == "refused":
        raise DecommissionRefusedError(reason)
    assert desired is not None
    spec = parse_spec(desired.spec)
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
        store.set_decommission(
            key,
            DecommissionMarker(
                state="decommissioning",
                mode=request.mode,
                execution_name=inp.execution_name,
                execution_arn=inp.execution_arn,
                started_at=now_iso(),
                expires_at=now + LEASE_TTL_SECONDS,
            ),
        )
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


def summarize(workspace_key: str, mode: DecommissionMode, run: DecommissionRun) -> DecommissionSummary:
    """What was deleted and kept: the plan, corrected by what the release of the references decided (a
    resource kept for another workspace that left meanwhile is taken now; one referred to meanwhile stays)
    and by what the deleting steps kept on the way."""
    plan = run.plan
    summary = DecommissionSummary(workspace_key=workspace_key, mode=mode)
    if plan is None:
        return summary
    claimed = {SharedKey(c.kind, c.key).pk for c in run.release.claimed} if run.release else set[str]()
    kept: dict[tuple[str, str], PlanItem] = {}
    later = [*(run.release.kept if run.release else [])]
    later += [k for p in run.progress.values() for k in p.kept]
    later += [k for branch in run.shared_progress.values() for p in branch.values() for k in p.kept]
    later += run.restored_rules.kept if run.restored_rules else []
    for item in later:
        kept[(item.kind, item.shared_key or item.name)] = item
    for item in plan.items:
        override = kept.get((item.kind, item.shared_key or item.name))
        if override is not None:
            summary.kept.append(override)
        elif item.shared_key and run.release is not None and item.eligible and item.action != "gone":
            if item.shared_key in claimed:
                summary.deleted.append(item.model_copy(update={"action": "delete"}))
            else:
                summary.kept.append(item.model_copy(update={"action": "keep"}))
        elif item.action == "delete":
            summary.deleted.append(item)
        elif item.action == "gone":
            summary.gone.append(item)
        else:
            summary.kept.append(item)
    summary.orphans = list(run.orphans.orphans) if run.orphans else []
    return summary


def finish_decommission(inp: FinishDecommissionInput, deps: Deps) -> DecommissionSummary:
    """Mark the workspace decommissioned, keep its spec and runs as history, stop drift mapping events to
    it, and release the lease without a rerun."""
    ctx, store = inp.context, deps.store
    key = ctx.workspace_key
    summary = summarize(key, ctx.mode, inp.run)
    ended = now_iso()
    store.set_decommission(
        key,
        DecommissionMarker(
            state="decommissioned",
            mode=ctx.mode,
            execution_name=inp.execution_name,
            execution_arn=inp.execution_arn,
            started_at=inp.started_at,
            ended_at=ended,
        ),
    )
    record: dict[str, Any] = {
        "mode": ctx.mode,
        "execution": inp.execution_name,
        "ended_at": ended,
        "deleted": [_brief(i) for i in summary.deleted],
        "kept": [_brief(i) for i in summary.kept],
        "orphans": [o.model_dump() for o in summary.orphans],
    }
    store.update_observed(
        key,
        {
            "health": "DECOMMISSIONED",
            "last_error": None,
            "last_run": {
                "execution": inp.execution_name,
                "outcome": "SUCCEEDED",
                "ended_at": ended,
                "kind": "decommission",
            },
            "decommission": record,
        },
    )
    store.unindex_workspace(key)
    store.add_run(
        key,
        RunRecord(
            execution_name=inp.execution_name,
            execution_arn=inp.execution_arn,
            started_at=inp.started_at,
            outcome="SUCCEEDED",
            summary={"decommission": record},
        ),
    )
    store.release_lease(key, inp.execution_name, allow_rerun=False)
    return summary


def _brief(item: PlanItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "name": item.name,
        "ids": item.ids,
        "reason": item.reason,
        "used_by": item.used_by,
    }


def record_decommission_failure(
    inp: RecordDecommissionFailureInput, deps: Deps
) -> RecordDecommissionFailureOutput:
    """The one failure path: give back the claims this decommission holds (a re-run claims again, an apply
    may take the resources back), mark the decommission failed (drift still leaves the workspace alone: a
    half-deleted workspace is not to be repaired), record the run and release the lease."""
    cause = human_cause(inp.error.Error, inp.error.Cause)
    key = inp.request.get("workspace_key")
    if not isinstance(key, str):
        return RecordDecommissionFailureOutput(error=inp.error.Error, cause=cause[:32000])
    store = deps.store
    lease = store.get_lease(key)
    holds_lease = lease is not None and lease.holder == inp.execution_name
    desired = store.get_desired(key)
    marker = desired.decommission if desired else None
    marker_ours = marker is not None and marker.execution_name == inp.execution_name
    # Only what this execution started is recorded and undone: a decommission that failed while waiting
    # for the lease must not touch the claims or the marker of the one that holds it.
    if holds_lease:
        token = claim_token(key)
        for record in deps.ledger.list_shared():
            if record.deleting == token:
                deps.ledger.unclaim(record.shared_key, token)
    if holds_lease or marker_ours:
        mode: DecommissionMode = (
            marker.mode
            if marker is not None
            else ("delete" if inp.request.get("mode") == "delete" else "detach")
        )
        ended = now_iso()
        store.set_decommission(
            key,
            DecommissionMarker(
                state="failed",
                mode=mode,
                execution_name=inp.execution_name,
                execution_arn=inp.execution_arn,
                started_at=inp.started_at,
                ended_at=ended,
                error=inp.error.Error,
                cause=cause[:2000],
            ),
        )
        store.update_observed(
            key,
            {
                "health": "FAILED",
                "last_error": {
                    "error": inp.error.Error,
                    "cause": f"decommission failed: {cause}",
                    "at": ended,
                },
                "last_run": {
                    "execution": inp.execution_name,
                    "outcome": "FAILED",
                    "ended_at": ended,
                    "kind": "decommission",
                },
            },
        )
        store.add_run(
            key,
            RunRecord(
                execution_name=inp.execution_name,
                execution_arn=inp.execution_arn,
                started_at=inp.started_at,
                outcome="FAILED",
                error=inp.error.Error,
                cause=cause,
                summary={"decommission": {"mode": mode}},
            ),
        )
    if holds_lease:
        store.release_lease(key, inp.execution_name, allow_rerun=False)
    return RecordDecommissionFailureOutput(error=inp.error.Error, cause=cause[:32000])
