"""The event path of drift: DetectDrift maps CloudTrail API-call events to the workspaces they touch.

It only says "look at workspace X" to the reconciler (level-triggered): a missed, duplicated or
out-of-order event cannot leave a workspace wrong, and the scheduled scan (drift/fleet.py) finds what no
event reported.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dbx_privatelink.drift.events import describe_change
from dbx_privatelink.drift.outcomes import DetectDriftOutput, WorkspaceOutcome
from dbx_privatelink.drift.principals import actor_of, is_own_principal
from dbx_privatelink.drift.records import event_fingerprint, record_drifts, released_on_failure
from dbx_privatelink.drift.remediation import account_of, respond

if TYPE_CHECKING:
    from dbx_privatelink.drift.events import CloudTrailEvent
    from dbx_privatelink.store import StoreClient
    from dbx_privatelink.wiring import Deps

# Ids the reconcile's record step may not index (it indexes *_id fields of the DNS result's objects, not
# rule lists or associations): those are looked up in the recorded state instead.
_SEARCH_RECORDED_PREFIXES = ("rslvr-",)


def workspaces_for(store: StoreClient, resource_ids: list[str]) -> dict[str, list[str]]:
    """The workspaces that use any of the resources, with the resources each uses (shared ones map to
    several)."""
    found: dict[str, list[str]] = {}
    unindexed: list[str] = []
    for rid in resource_ids:
        keys = store.workspaces_using(rid)
        for key in keys:
            found.setdefault(key, []).append(rid)
        if not keys and rid.startswith(_SEARCH_RECORDED_PREFIXES):
            unindexed.append(rid)
    if unindexed:
        for key in store.list_workspaces():
            text = json.dumps(store.get_observed(key) or {})
            for rid in unindexed:
                if f'"{rid}"' in text:
                    found.setdefault(key, []).append(rid)
    return found


def _epoch(stamp: str) -> float | None:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _ignored(event: CloudTrailEvent, reason: str) -> DetectDriftOutput:
    return DetectDriftOutput(
        event_id=event.id, event_name=event.detail.eventName, outcome="ignored", reason=reason
    )


def detect_drift(event: CloudTrailEvent, deps: Deps) -> DetectDriftOutput:
    """Map one CloudTrail API-call event to the workspaces it touches and respond per their drift mode."""
    own_account = account_of(deps.settings.state_machine_arn)
    detail = event.detail
    if event.account != own_account or (
        detail.recipientAccountId and detail.recipientAccountId != own_account
    ):
        return _ignored(
            event, f"an event of account {detail.recipientAccountId or event.account}, not {own_account}"
        )
    if event.failed:
        return _ignored(event, f"the call failed ({detail.errorCode}): nothing changed")
    own_roles = deps.settings.own_role_arns.split(",")
    if is_own_principal(detail.userIdentity, account_id=own_account, role_arns=own_roles):
        return _ignored(event, "the application's own call")
    store = deps.drift_store
    # The drift store's module (its records among its models) is loaded where the composition root builds the
    # store (deps.drift_store above), as every adapter is, not at import.
    from dbx_privatelink.drift_store import DriftRecord

    using = workspaces_for(store, event.resource_ids())
    if not using:
        return _ignored(event, "no workspace uses the resources it names")
    summary, before, after = describe_change(event)
    now = int(deps.clock())
    outcomes: list[WorkspaceOutcome] = []
    for key, ids in sorted(using.items()):
        desired = store.get_desired(key)
        if desired is not None and desired.decommission is not None:
            # Decommissioned (its resources deleted or detached) or being decommissioned: nothing starts.
            outcomes.append(WorkspaceOutcome(workspace_key=key, outcome="decommissioned"))
            continue
        if not store.claim_drift_event(key, event.id, now):
            outcomes.append(WorkspaceOutcome(workspace_key=key, outcome="duplicate"))
            continue
        with released_on_failure(store, key, event.id):
            record = respond(
                DriftRecord(
                    event_id=event.id,
                    workspace_key=key,
                    source="cloudtrail",
                    event_time=detail.eventTime or event.time,
                    event_name=detail.eventName,
                    resource_ids=ids,
                    actor=actor_of(detail.userIdentity),
                    summary=summary,
                    before=before,
                    after=after,
                    fingerprint=event_fingerprint(key, ids),
                ),
                deps,
                changed_at=_epoch(detail.eventTime or event.time),
            )
            record_drifts([record], deps)
        outcomes.append(
            WorkspaceOutcome(
                workspace_key=key,
                outcome=record.outcome,
                mode=record.mode,
                execution_arn=record.execution_arn,
            )
        )
    return DetectDriftOutput(
        event_id=event.id, event_name=detail.eventName, outcome="handled", workspaces=outcomes
    )
