"""The scheduled scan of the fleet, as the scan state machine runs it (statemachine/scan_fleet.asl.json).

One tick: ScanPlan lists the workspaces least recently scanned first (drift/tick.py), then a Map scans
each one in its own Lambda invocation (scan_and_respond), at most MaxConcurrency at once, until the tick's
time budget is spent. A tick that cannot reach every workspace leaves the rest at the front of the line
for the next tick, so no workspace starves however large the fleet; one workspace's failure is caught by
its own item and reported in the tick's output, and never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dbx_privatelink.drift.outcomes import NOT_REACHED, WorkspaceOutcome
from dbx_privatelink.drift.records import (
    COULD_NOT_CHECK,
    STORED_OUTCOMES,
    close_gone,
    record_drifts,
    released_on_failure,
    split_findings,
)
from dbx_privatelink.drift.remediation import follow_up_failed_remediation, respond
from dbx_privatelink.drift.scan import scan_workspace

if TYPE_CHECKING:
    from dbx_privatelink.drift.outcomes import ScanWorkspaceInput
    from dbx_privatelink.drift.scan import ScanResult
    from dbx_privatelink.wiring import Deps

MAX_FINDINGS_LISTED = 3
MAX_FINDING_CHARS = 120
MAX_OUTCOME_CHARS = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def brief_findings(findings: Sequence[str]) -> list[str]:
    """The findings as the tick's output carries them: the first few, each cut short (the drift record
    keeps them whole), so that the Map's results stay within the execution's 256 KB state."""
    listed = [_cut(f, MAX_FINDING_CHARS) for f in findings[:MAX_FINDINGS_LISTED]]
    if len(findings) > MAX_FINDINGS_LISTED:
        listed.append(f"(+{len(findings) - MAX_FINDINGS_LISTED} more in the drift record)")
    return listed


def scan_and_respond(
    event: ScanWorkspaceInput, deps: Deps, *, scan: Callable[[str, Deps], ScanResult] = scan_workspace
) -> WorkspaceOutcome:
    """Scan one workspace of the tick (one Map item) and respond to what differs per its drift mode."""
    key = event.workspace_key
    now = deps.clock()
    if not event.first_wave and now >= event.deadline.timestamp():
        # Not marked scanned: it stays at the front of the line for the next tick.
        return WorkspaceOutcome(workspace_key=key, outcome=NOT_REACHED)
    store = deps.drift_store
    # Marked first: a workspace whose scan keeps failing goes to the back of the line like the others,
    # instead of taking a place at the front of every tick.
    store.mark_scanned(key, now, event.scan_id)
    follow_up_failed_remediation(key, deps)
    seen = store.get_remediations(key)  # before the live reads: see respond()
    result = scan(key, deps)
    if result.skipped:
        return WorkspaceOutcome(workspace_key=key, outcome=_cut(result.skipped, MAX_OUTCOME_CHARS))
    if not result.findings:
        close_gone(key, deps)  # found healthy: every open drift is repaired or resolved
        return WorkspaceOutcome(workspace_key=key, outcome="in sync")
    findings = brief_findings(result.findings)
    # The drift store's module (its records among its models) is loaded where the composition root builds the
    # store (deps.drift_store above), as every adapter is, not at import.
    from dbx_privatelink.drift_store import DriftRecord

    if not store.claim_drift_event(key, event.scan_id, int(now)):
        # This item ran before (a retry after a failure past this point): that run recorded the drift.
        return WorkspaceOutcome(workspace_key=key, outcome="duplicate", findings=findings)
    with released_on_failure(store, key, event.scan_id):
        record = respond(
            DriftRecord(
                event_id=event.scan_id,
                workspace_key=key,
                source="scan",
                event_time=event.scan_time,
                event_name="ScheduledScan",
                summary=f"the scheduled scan found {len(result.findings)} difference(s)",
                findings=result.findings,
            ),
            deps,
            seen=seen,
        )
        saved = record_drifts(split_findings(record), deps)
    if record.outcome in STORED_OUTCOMES and not any(f.startswith(COULD_NOT_CHECK) for f in result.findings):
        # Every side was read: an open drift this scan did not see again is gone.
        close_gone(key, deps, still_open=[r.fingerprint for r in saved])
    return WorkspaceOutcome(
        workspace_key=key,
        outcome=record.outcome,
        mode=record.mode,
        execution_arn=record.execution_arn,
        findings=findings,
    )
