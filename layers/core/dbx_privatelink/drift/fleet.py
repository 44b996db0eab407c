"""The scheduled scan of the fleet, as the scan state machine runs it (statemachine/scan_fleet.asl.json).

One tick: ScanPlan lists the workspaces least recently scanned first, then a Map scans each one in its own
Lambda invocation (scan_and_respond), at most MaxConcurrency at once, until the tick's time budget is
spent. A tick that cannot reach every workspace leaves the rest at the front of the line for the next
tick, so no workspace starves however large the fleet; one workspace's failure is caught by its own item
and reported in the tick's output, and never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import map_aws_error
from dbx_privatelink.drift.models import (
    NOT_REACHED,
    PlannedWorkspace,
    ScanPlan,
    WorkspaceOutcome,
)
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
from dbx_privatelink.store import DriftRecord

if TYPE_CHECKING:
    from dbx_privatelink.drift.models import (
        ScanPlanInput,
        ScanWorkspaceInput,
    )
    from dbx_privatelink.drift.scan import ScanResult
    from dbx_privatelink.store import ScanCandidate
    from dbx_privatelink.wiring import Deps

# Time the tick keeps after its budget for the items already running: the ScanWorkspace function's
# Timeout in template.yaml. A tick that still runs when the next one starts is not overlapped either: the
# next one finds it running and scans nothing (earlier_scan_running).
SCAN_TAIL_SECONDS = 60
# The Map's results travel in the execution's state, limited to 256 KB: 200 outcomes of at most about
# 1 KB each (the caps below) stay under it with the plan beside them. The rest wait for the next tick,
# first in line.
MAX_WORKSPACES_PER_TICK = 200
BUSY_LISTED = 25
MAX_FINDINGS_LISTED = 3
MAX_FINDING_CHARS = 120
MAX_OUTCOME_CHARS = 200


def budget_seconds(scan_rate_minutes: int) -> int:
    """The tick's time budget: the scan interval less the tail the items started last may still take."""
    return max(0, scan_rate_minutes * 60 - SCAN_TAIL_SECONDS)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def scan_order(
    candidates: Iterable[ScanCandidate], now: float, limit: int = MAX_WORKSPACES_PER_TICK
) -> tuple[list[ScanCandidate], list[str], int]:
    """This tick's workspaces in scan order, the busy ones, and how many wait for the next tick.

    Least recently scanned first (never scanned before any), ties by key: a tick cut short by its budget
    or the cap leaves exactly the workspaces it did not reach at the front for the next tick. A workspace
    whose lease is held is being reconciled: the reconcile reads its live state anyway, and scanning it
    would only find the transitional states the scan leaves alone, so it is left out without costing an
    invocation; its scan time does not move, so it is first in line once the lease is released.
    """
    every = list(candidates)
    busy = sorted(c.workspace_key for c in every if c.lease_expires_at > now)
    free = [c for c in every if c.lease_expires_at <= now]
    # "" sorts before any stamp: never scanned comes first.
    free.sort(key=lambda c: (c.last_scanned_at or "", c.workspace_key))
    return free[:limit], busy, max(0, len(free) - limit)


def _state_machine_of(execution_arn: str) -> str:
    """arn:...:execution:<machine>:<name> -> arn:...:stateMachine:<machine>."""
    head, _, rest = execution_arn.partition(":execution:")
    return f"{head}:stateMachine:{rest.rsplit(':', 1)[0]}"


def _as_datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def earlier_scan_running(sfn: Any, execution_arn: str, started_at: datetime) -> str | None:
    """The name of a scan execution still running that started before this one, or None.

    A tick never overlaps the previous one: two ticks at once would scan the same workspaces twice and
    race on their drift records. Ties (two executions started in the same instant, an EventBridge
    redelivery) go to the smaller name, so exactly one of them scans.
    """
    own_name = execution_arn.rsplit(":", 1)[-1]
    kwargs: dict[str, Any] = {
        "stateMachineArn": _state_machine_of(execution_arn),
        "statusFilter": "RUNNING",
        "maxResults": 100,
    }
    while True:
        try:
            page = sfn.list_executions(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, "Step Functions ListExecutions") from exc
        for execution in page.get("executions", []):
            if execution["executionArn"] == execution_arn:
                continue
            other = _as_datetime(execution["startDate"])
            if (other, execution["name"]) < (started_at, own_name):
                return str(execution["name"])
        if not page.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]


def plan_scan(event: ScanPlanInput, deps: Deps) -> ScanPlan:
    """Which workspaces this tick scans, in what order, until when and how many at once (read-only)."""
    concurrency = event.request.max_concurrency or event.max_concurrency
    budget = (
        event.request.budget_seconds
        if event.request.budget_seconds is not None
        else budget_seconds(event.scan_rate_minutes)
    )
    started = event.started_at if event.started_at.tzinfo else event.started_at.replace(tzinfo=UTC)
    plan = ScanPlan(
        scan_id=event.scan_id,
        started_at=_stamp(started),
        deadline=_stamp(started + timedelta(seconds=budget)),
        budget_seconds=budget,
        max_concurrency=concurrency,
    )
    running = earlier_scan_running(deps.sfn, event.execution_arn, started)
    if running is not None:
        plan.skipped = f"the scan {running} is still running: this tick leaves the fleet to it"
        return plan
    planned, busy, deferred = scan_order(deps.drift_store.list_scan_candidates(), deps.clock())
    plan.workspaces = [
        PlannedWorkspace(workspace_key=c.workspace_key, last_scanned_at=c.last_scanned_at) for c in planned
    ]
    plan.busy, plan.busy_count, plan.deferred = busy[:BUSY_LISTED], len(busy), deferred
    return plan


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
