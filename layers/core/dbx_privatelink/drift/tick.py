"""The plan of one tick of the fleet scan (ScanPlan, the scan state machine's first state): which
workspaces it scans, in what order, until when and how many at once. Apart from drift.fleet (which scans
each workspace and so loads the reconcile's modules) so that ScanPlan's function does not import them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import map_aws_error
from dbx_privatelink.drift.models import PlannedWorkspace, ScanPlan

if TYPE_CHECKING:
    from dbx_privatelink.drift.models import ScanPlanInput
    from dbx_privatelink.drift_store import ScanCandidate
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
