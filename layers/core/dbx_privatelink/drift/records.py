"""Drift records that tell the truth once: one record and one notification per open drift.

A drift is identified by a fingerprint: the workspace, and the finding's kind and resource (a scan) or the
resources an event names (CloudTrail). While it is open, seeing it again (the next scan, in notify mode or
while paused every 15 minutes; another event on the same resource) updates the one record, its
last_seen_at and count, and notifies nobody; an escalation (rate_limited, remediation_failed) is notified
once. The record is closed `repaired` when the repair run that it started or joined SUCCEEDED, or
`resolved` when a scan finds it gone without one. Every write is conditional (the record's version, or
its absence), so a scan and an event at once, or a retried scan, never make two records of one drift.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from dbx_privatelink.clock import now_iso
from dbx_privatelink.drift.notify import Notifier, drift_message
from dbx_privatelink.errors import DbxPrivateLinkError

if TYPE_CHECKING:
    from dbx_privatelink.drift_store import DriftRecord, DriftStore
    from dbx_privatelink.wiring import Deps

# Outcomes of respond() that are drift to keep: the others (off, skipped, decommissioned) store nothing.
STORED_OUTCOMES = frozenset(
    {"remediation_started", "coalesced", "notified", "paused", "rate_limited", "remediation_failed"}
)
# Outcomes that are notified again on an open drift (once: the next one is a repeat of the same).
ESCALATIONS = frozenset({"rate_limited", "remediation_failed"})
# What a scan finding that is not drift starts with (a side could not be read): it opens nothing, and a
# scan that has one cannot tell that the drifts of that side are gone.
COULD_NOT_CHECK = "could not check"
# Each round of conditional writes on one record lets at least one writer through: a burst of N events on
# one resource, handled at once, needs at most N rounds.
MAX_SAVE_ATTEMPTS = 50
MAX_LISTED = 20

# AWS ids (vpce-…, sg-…, subnet-…, rslvr-rr-…), Databricks UUIDs, hosted zone ids and workspace ids.
_ID = re.compile(
    r"\b(?:[a-z][a-z0-9]*-)+[0-9a-f]{8,17}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\bZ[0-9A-Z]{8,32}\b"
    r"|\b\d{6,}\b"
)
# A state at the end of a finding ("is rejected", "is BROKEN"): a new state of the same thing is the same drift.
_STATE = re.compile(r" is [A-Za-z_]+$")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def finding_kind(finding: str) -> tuple[str, str]:
    """The kind and the resource of a scan finding: its text before any message (after ": "), with ids and
    a trailing state left out, and the first id it names ("" when it names none)."""
    head = finding.split(": ", 1)[0]
    ids = _ID.findall(head)
    kind = _STATE.sub(" is <state>", _ID.sub("<id>", head))
    return kind, ids[0] if ids else ""


def scan_fingerprint(workspace_key: str, finding: str) -> str:
    kind, resource = finding_kind(finding)
    return _digest(workspace_key, "scan", kind, resource)


def event_fingerprint(workspace_key: str, resource_ids: Iterable[str]) -> str:
    return _digest(workspace_key, "event", *sorted(set(resource_ids)))


def split_findings(record: DriftRecord) -> list[DriftRecord]:
    """One record per drift the scan found (findings of the same kind and resource go together), each with
    the response decided for the whole workspace."""
    groups: dict[str, list[str]] = {}
    for finding in record.findings:
        if not finding.startswith(COULD_NOT_CHECK):
            groups.setdefault(scan_fingerprint(record.workspace_key, finding), []).append(finding)
    return [
        record.model_copy(
            update={
                "fingerprint": fingerprint,
                "findings": findings,
                "summary": findings[0],
                "resource_ids": [r for r in [finding_kind(findings[0])[1]] if r],
                "actions": list(record.actions),
            }
        )
        for fingerprint, findings in groups.items()
    ]


def _same_drift(record: DriftRecord, seen: DriftRecord) -> bool:
    """The fingerprint; or, between an event and a scan, a resource both name: the scan's finding about an
    endpoint joins the record the event about that endpoint opened (the event says who, the scan what)."""
    if record.fingerprint == seen.fingerprint:
        return True
    across = "cloudtrail" in (record.source, seen.source) and record.source != seen.source
    return across and bool(set(record.resource_ids) & set(seen.resource_ids))


def _merged(current: DriftRecord, seen: DriftRecord) -> DriftRecord:
    """The open record `current` seen again as `seen`: last seen, count, and what is true now."""
    # Two findings of one scan that join one event's record are one sighting.
    same_sighting = current.last_seen_at == seen.detected_at
    findings = [*current.findings, *seen.findings] if same_sighting else seen.findings or current.findings
    update: dict[str, object] = {
        "last_seen_at": seen.detected_at,
        "count": current.count + (0 if same_sighting else 1),
        "mode": seen.mode or current.mode,
        "actor": current.actor or seen.actor,
        "resource_ids": list(dict.fromkeys([*current.resource_ids, *seen.resource_ids])),
        "findings": list(dict.fromkeys(findings))[:MAX_LISTED],
        "actions": list(dict.fromkeys([*current.actions, *seen.actions]))[-MAX_LISTED:],
    }
    # Joining a run keeps the record's own remediation (it is that run, or one that will see it too).
    if not (seen.outcome == "coalesced" and current.execution_arn):
        update |= {
            "outcome": seen.outcome,
            "execution_name": seen.execution_name,
            "execution_arn": seen.execution_arn,
        }
    return current.model_copy(update=update)


def _save(store: DriftStore, record: DriftRecord) -> tuple[DriftRecord, bool]:
    """Open the drift, or update the open record it repeats; whether to notify it: new, escalated, or not
    notified yet (the publish of the sighting that opened it failed: the next one makes up for it)."""
    for _ in range(MAX_SAVE_ATTEMPTS):
        current = next(
            (r for r in store.list_open_drift(record.workspace_key) if _same_drift(r, record)), None
        )
        if current is None:
            opened = store.open_drift(record)
            if opened is not None:
                return opened, True
            continue  # opened by someone else a moment ago: update that one
        escalated = record.outcome in ESCALATIONS and current.outcome != record.outcome
        saved = store.save_open_drift(_merged(current, record))
        if saved is not None:
            return saved, escalated or not current.notified
    raise RuntimeError(f"the drift records of {record.workspace_key} kept changing under this write")


def _mark_notified(store: DriftStore, record: DriftRecord) -> DriftRecord:
    for _ in range(MAX_SAVE_ATTEMPTS):
        if record.notified:
            return record
        saved = store.save_open_drift(record.model_copy(update={"notified": True}))
        if saved is not None:
            return saved
        record = next(
            (r for r in store.list_open_drift(record.workspace_key) if r.fingerprint == record.fingerprint),
            record.model_copy(update={"notified": True}),  # closed meanwhile: nothing left to mark
        )
    return record


def notify(deps: Deps, records: list[DriftRecord]) -> bool:
    """One message for the drifts opened (or escalated) together; False when the stack has no topic."""
    if not records or not deps.settings.topic_arn:
        return False
    subject, message = drift_message(records[0], deps.settings.owner_tag)
    if len(records) > 1:
        message = "\n\n".join(
            [f"{len(records)} drifts", *(drift_message(r, deps.settings.owner_tag)[1] for r in records)]
        )
    Notifier(deps.sns, deps.settings.topic_arn).publish(subject, message)
    return True


def record_drifts(records: list[DriftRecord], deps: Deps) -> list[DriftRecord]:
    """Store each drift once (open it, or count it again) and notify what is new or escalated, once."""
    store = deps.drift_store
    saved: list[DriftRecord] = []
    news: list[int] = []
    for record in records:
        if record.outcome not in STORED_OUTCOMES:
            continue
        stored, new = _save(store, record)
        if new:
            news.append(len(saved))
        saved.append(stored)
    if notify(deps, [saved[i] for i in news]):
        for i in news:
            saved[i] = _mark_notified(store, saved[i])
    return saved


@contextmanager
def released_on_failure(store: DriftStore, workspace_key: str, event_id: str) -> Iterator[None]:
    """Handle a claimed event or tick; when that fails, give the claim back before the error goes on, so
    the retry (Lambda's, the scan item's) records the sighting instead of taking it for a duplicate. A
    remediation it started is not started twice: the retry finds it running and joins it."""
    try:
        yield
    except Exception:
        with suppress(DbxPrivateLinkError):  # the error that failed the handling is the one to report
            store.release_drift_event(workspace_key, event_id)
        raise


def _repaired_by(deps: Deps, record: DriftRecord) -> bool:
    """Whether the run the record started or joined SUCCEEDED (its run record says so)."""
    name = record.execution_name or (record.execution_arn or "").rsplit(":", 1)[-1]
    if not name:
        return False
    runs = deps.drift_store.list_runs(record.workspace_key, limit=MAX_LISTED)
    return any(r.execution_name == name and r.outcome == "SUCCEEDED" for r in runs)


def _close(store: DriftStore, record: DriftRecord, outcome: str) -> bool:
    closed = record.model_copy(update={"outcome": outcome, "closed_at": now_iso()})
    return store.close_drift(closed)


def close_gone(key: str, deps: Deps, *, still_open: Iterable[str] = ()) -> list[DriftRecord]:
    """A scan compared the workspace: close its open drifts it did not see again (fingerprints other than
    `still_open`), `repaired` when their repair run SUCCEEDED, else `resolved`."""
    store = deps.drift_store
    keep = set(still_open)
    closed: list[DriftRecord] = []
    for record in store.list_open_drift(key):
        if record.fingerprint in keep:
            continue
        outcome = "repaired" if _repaired_by(deps, record) else "resolved"
        if _close(store, record, outcome):
            closed.append(record.model_copy(update={"outcome": outcome}))
    return closed


def close_repaired(key: str, execution_name: str, execution_arn: str, store: DriftStore) -> list[str]:
    """A reconcile run SUCCEEDED: the open drifts it was started for, or joined, are `repaired`."""
    closed: list[str] = []
    for record in store.list_open_drift(key):
        ours = record.execution_name == execution_name or (
            bool(execution_arn) and record.execution_arn == execution_arn
        )
        if (
            ours
            and record.outcome in ("remediation_started", "coalesced")
            and _close(store, record, "repaired")
        ):
            closed.append(record.fingerprint)
    return closed
