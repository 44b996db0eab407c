"""What to do about one drift of one workspace: record it, then remediate, notify, or nothing.

Remediation is a reconcile execution of the state machine with the workspace's desired spec. Duplicates
and bursts collapse into one run: while the last remediation (or any execution holding the lease) runs,
a new drift only marks the workspace dirty, and the holder reconciles once more before it releases. At
most `max_remediations_per_hour` runs start per workspace; past that the workspace is put in notify mode
(a stored override) and an alert goes out, so the application never fights a human forever.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from dbx_privatelink.aws.executions import execution_status
from dbx_privatelink.drift.prerequisites import prerequisite_repairs
from dbx_privatelink.drift.records import notify
from dbx_privatelink.errors import AwsAccessDeniedError
from dbx_privatelink.spec_sections import spec_network

if TYPE_CHECKING:
    from dbx_privatelink.drift_store import DriftRecord, DriftStore, RemediationWindow
    from dbx_privatelink.wiring import Deps

# The customer tags the VPCs and security groups drift repairs may change with repair=<stack>.
REPAIR_TAG_KEY = "dbx-privatelink:repair"
# A remediation reserved but not visible yet in Step Functions counts as running for this long.
RESERVATION_GRACE_SECONDS = 120
MAX_RESERVE_ATTEMPTS = 5


def drift_execution_name(workspace_key: str, event_id: str) -> str:
    """The execution name of the remediation of one event: the same event never starts two runs."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"drift-{workspace_key}-{digest}")[:80]


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>."""
    head, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{head}:execution:{machine}:{name}"


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _execution_running(deps: Deps, arn: str, started_at: int, now: int) -> bool:
    if not arn:
        return False
    status = execution_status(deps.sfn, arn)
    if status is None:  # reserved a moment ago and not started yet, or never started
        return now - started_at < RESERVATION_GRACE_SECONDS
    return status == "RUNNING"


def _coalesce(deps: Deps, store: DriftStore, key: str, now: int, window: RemediationWindow) -> str | None:
    """The ARN of a running execution that will see this drift (marking the lease dirty), or None."""
    lease = store.get_lease(key)
    lease_running = (
        lease is not None and lease.expires_at > now and _execution_running(deps, lease.holder_arn, 0, now)
    )
    if lease is not None and lease_running and store.mark_dirty(key, lease.holder):
        return lease.holder_arn or lease.holder
    if _execution_running(deps, window.last_execution_arn, window.last_started_at, now):
        # Running but not holding the lease yet: it has not read anything, it will see this drift.
        return window.last_execution_arn
    return None


def _repair_prerequisites(deps: Deps, spec_doc: dict[str, Any]) -> list[str]:
    """Restore the VPC attributes and security-group rules preflight requires; what was done."""
    spec = spec_network(spec_doc)
    ec2 = deps.ec2(spec.region)
    net = spec.network
    groups = ec2.get_security_groups(
        [*net.all_workspace_security_group_ids(), net.endpoint_security_group_id]
    )
    repairs = prerequisite_repairs(spec, ec2.get_vpc(net.vpc_id), groups, deps.catalog)
    writer = deps.drift_ec2(spec.region)
    done: list[str] = []
    for repair in repairs:
        try:
            if repair.kind == "vpc_attribute":
                writer.enable_vpc_attribute(repair.target, repair.attribute)
                done.append(repair.text)
            elif writer.authorize(repair.target, repair.direction, repair.permission):
                done.append(repair.text)
        except AwsAccessDeniedError:
            # The roles may change only the customer's VPCs and groups tagged repair=<stack> (template.yaml):
            # the reconcile still starts, and its preflight names what is missing.
            done.append(
                f"not done: {repair.text} ({repair.target} is not tagged "
                f"{REPAIR_TAG_KEY}={deps.settings.owner_tag}: tag it to let drift repairs change it)"
            )
    return done


def respond(
    record: DriftRecord,
    deps: Deps,
    *,
    seen: RemediationWindow | None = None,
    changed_at: float | None = None,
) -> DriftRecord:
    """Decide and act on one drift, and return its record with the outcome (drift/records.py stores it:
    once per open drift, and notifies it once).

    `seen` is the remediation window read before the live state was (the scan): when a remediation started
    since, it will see the same live state, so this drift joins it instead of starting another. Likewise a
    change made at `changed_at` (the event's time) was seen by any remediation that started after it.
    """
    store = deps.drift_store
    key = record.workspace_key
    desired = store.get_desired(key)
    if desired is None:
        record.outcome = "skipped"
        return record
    if desired.decommission is not None:
        # Decommissioned, or being decommissioned: nothing is repaired, recorded or notified (a drift run
        # would put back what the decommission takes down; the lease alone holds only while it runs).
        record.outcome = "decommissioned"
        record.mode = "off"
        return record
    override = store.get_drift_override(key)
    spec_mode = str((desired.spec.get("drift") or {}).get("mode", "remediate"))
    record.mode = override.mode if override else spec_mode
    if record.mode == "off":
        record.outcome = "ignored"
        return record
    if record.mode == "notify":
        record.outcome = "notified"
        return record
    if store.get_pause().paused:
        record.outcome = "paused"
        return record

    machine = deps.settings.state_machine_arn
    name = drift_execution_name(key, record.event_id)
    arn = execution_arn(machine, name)
    for _ in range(MAX_RESERVE_ATTEMPTS):
        now = int(deps.clock())
        window = store.get_remediations(key)
        running = _coalesce(deps, store, key, now, window)
        if running is None and seen is not None and window.version != seen.version:
            running = window.last_execution_arn  # started after the scan looked: it saw what the scan saw
        if running is None and changed_at is not None and window.last_started_at > changed_at:
            running = window.last_execution_arn  # started after the change: it read the changed state
        if running is not None:
            record.outcome = "coalesced"
            record.execution_arn = running
            return record
        if len(window.recent(now)) >= deps.settings.max_remediations_per_hour:
            store.set_drift_override(
                key,
                "notify",
                f"{len(window.recent(now))} remediations in the last hour (limit "
                f"{deps.settings.max_remediations_per_hour}): someone keeps changing it back",
            )
            record.mode = "notify"
            record.outcome = "rate_limited"
            return record
        if store.reserve_remediation(key, window, now, name, arn):
            break
    else:
        record.outcome = "coalesced"  # others kept starting remediations: one of them will repair it
        return record

    record.actions = _repair_prerequisites(deps, desired.spec)
    try:
        started = deps.sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(desired.spec))
        arn = str(started["executionArn"])
    except Exception as exc:
        if "ExecutionAlreadyExists" not in type(exc).__name__ and "ExecutionAlreadyExists" not in str(exc):
            raise
    record.outcome = "remediation_started"
    record.execution_name = name
    record.execution_arn = arn
    record.actions.append(f"started reconcile execution {name}")
    return record


def follow_up_failed_remediation(key: str, deps: Deps) -> DriftRecord | None:
    """When the workspace's last run was a drift remediation that FAILED, say so once on its open drift
    record (outcome remediation_failed, the run's error and cause as the action to take) and notify.

    A repair that cannot complete by itself (a deleted Databricks endpoint needs new subnets and groups)
    must not look like a repair in progress: the record and the notification name what to change. The
    drift stays open: the scan that finds it gone closes it.
    """
    store = deps.drift_store
    observed = store.get_observed(key) or {}
    last_run = observed.get("last_run") or {}
    name = str(last_run.get("execution") or "")
    if last_run.get("outcome") != "FAILED" or not name.startswith("drift-"):
        return None
    error = observed.get("last_error") or {}
    action = (
        f"reconcile execution {name} FAILED with {error.get('error', 'an error')}: {error.get('cause', '')}"
    )
    for _ in range(MAX_RESERVE_ATTEMPTS):
        record = next(
            (
                r
                for r in store.list_open_drift(key)
                if r.execution_name == name and r.outcome == "remediation_started"
            ),
            None,
        )
        if record is None:
            return None  # already followed up, or the run was not started by a drift record
        failed = record.model_copy(
            update={"outcome": "remediation_failed", "actions": [*record.actions, action]}
        )
        saved = store.save_open_drift(failed)
        if saved is not None:
            if notify(deps, [saved]):
                saved = store.save_open_drift(saved.model_copy(update={"notified": True})) or saved
            return saved
    return None
