"""The decommission's last steps: record the outcome (finished, or failed) and release the lease without a
rerun. Its first step, which marks the workspace and takes the lease, is begin.py: only it reads the spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbx_privatelink.clock import now_iso
from dbx_privatelink.decommission.claims import claim_token
from dbx_privatelink.decommission.run_models import DecommissionSummary, RecordDecommissionFailureOutput
from dbx_privatelink.errors import human_cause
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.store import DecommissionMarker, RunRecord

if TYPE_CHECKING:
    from dbx_privatelink.decommission import DecommissionMode
    from dbx_privatelink.decommission.models import PlanItem
    from dbx_privatelink.decommission.run_models import (
        DecommissionRun,
        FinishDecommissionInput,
        RecordDecommissionFailureInput,
    )
    from dbx_privatelink.wiring import Deps


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
