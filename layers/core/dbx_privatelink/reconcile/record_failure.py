"""RecordFailure: the one failure path of a reconcile run. Apart from record.py (RecordAndRelease), as it
parses the whole spec (its hash tells a rejected spec from the desired one), which RecordAndRelease does not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.clock import now_iso
from dbx_privatelink.errors import human_cause
from dbx_privatelink.models.record_steps import RecordFailureOutput
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import RunRecord

if TYPE_CHECKING:
    from dbx_privatelink.models.record_steps import RecordFailureInput
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.wiring import Deps


def record_failure(inp: RecordFailureInput, deps: Deps) -> RecordFailureOutput:
    """The one failure path: record the error on the workspace, release the lease, explain the cause.

    A run that failed before its spec became desired (invalid, or preflight failed) rejects that spec: the
    reason goes on the pending spec, and a workspace with a desired spec keeps it and its health, so drift
    repair goes on with the last good spec."""
    cause = human_cause(inp.error.Error, inp.error.Cause)
    key = inp.spec.get("workspace_key")
    if isinstance(key, str):
        try:
            spec = parse_spec(inp.spec)
        except Exception:  # an invalid spec is the very failure being recorded
            spec = None
        if spec is not None:
            _record_failed_run(inp, spec, cause, deps)
    return RecordFailureOutput(error=inp.error.Error, cause=cause[:32000])


def _record_failed_run(inp: RecordFailureInput, spec: WorkspaceSpec, cause: str, deps: Deps) -> None:
    key, spec_hash = spec.workspace_key, spec.spec_hash()
    desired = deps.store.get_desired(key)
    rejected = desired is None or desired.spec_hash != spec_hash
    if rejected:
        deps.store.reject_pending(key, spec_hash, inp.error.Error, cause)
    last_run = {"execution": inp.execution_name, "outcome": "FAILED", "ended_at": now_iso()}
    if rejected and desired is not None:
        # Nothing of the rejected spec was applied: the workspace is as its desired spec left it.
        deps.store.update_observed(key, {"last_run": {**last_run, "rejected_spec": spec_hash}})
    else:
        deps.store.update_observed(
            key,
            {
                "health": "FAILED",
                "last_error": {"error": inp.error.Error, "cause": cause, "at": now_iso()},
                "last_run": last_run,
            },
        )
    deps.store.add_run(
        key,
        RunRecord(
            execution_name=inp.execution_name,
            execution_arn=inp.execution_arn,
            started_at=inp.started_at,
            outcome="FAILED",
            error=inp.error.Error,
            cause=cause,
        ),
    )
    deps.store.release_lease(key, inp.execution_name, allow_rerun=False)
