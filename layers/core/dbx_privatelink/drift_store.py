"""Drift's part of the store (store.py's table): the open and closed drift records, the handled events, the
forced drift mode, the remediation window, the pause switch and the scan's bookkeeping. Apart from store.py,
so that the steps that only read and write specs, leases and runs do not create drift's models.

Items (pk, sk), next to those store.py lists:
  WS#<key>, DRIFTOPEN#<fingerprint>         an open drift: one record however often it is seen again
  WS#<key>, DRIFT#<detected at>#<event id>[#<fingerprint>]  a closed drift record: what, who, when, and
                                            what was done (history)
  WS#<key>, DRIFTEVT#<event id>             the event was handled for this workspace (duplicates stop)
  WS#<key>, DRIFT_OVERRIDE                  drift mode forced (notify after too many remediations)
  WS#<key>, REMEDIATIONS                    start times of the last hour's remediations, last execution
  WS#<key>, SCANNED                         when the scheduled scan last reached it (least recent first)
  CONFIG, PAUSE                             the global switch that blocks every remediation
"""

from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from pydantic import BaseModel, ConfigDict, Field

from dbx_privatelink.clock import now_iso
from dbx_privatelink.store import StoreClient, workspace_pk

DRIFT_EVENT_TTL_SECONDS = 90 * 24 * 3600
CONFIG_PK = "CONFIG"


class DriftRecord(BaseModel):
    """One drift of one workspace and its outcome (the audit trail of every remediation).

    A drift is identified by its fingerprint (the workspace, the finding's kind and resource): while it is
    open, seeing it again (another scan, another event on the same resource) updates this one record's
    last_seen_at and count instead of making a new record and a new notification. It is closed
    (closed_at set, outcome repaired or resolved) when a repair run SUCCEEDED or a scan finds it gone.
    """

    model_config = ConfigDict(defer_build=True)

    event_id: str
    workspace_key: str
    source: str  # cloudtrail | scan
    detected_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))
    event_time: str = ""
    event_name: str = ""
    resource_ids: list[str] = []
    actor: str = ""
    summary: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    findings: list[str] = []
    mode: str = ""  # the effective drift mode: remediate | notify | off
    # Open: remediation_started | coalesced | notified | paused | rate_limited | remediation_failed.
    # Closed: repaired (a repair run SUCCEEDED) | resolved (found healthy with no repair of ours).
    # Never stored: skipped | ignored | decommissioned.
    outcome: str = ""
    actions: list[str] = []
    execution_name: str | None = None
    execution_arn: str | None = None
    notified: bool = False
    fingerprint: str = ""  # empty on records written before drifts had one: each its own drift
    last_seen_at: str = ""  # the last scan or event that saw it (detected_at: the first)
    count: int = 1  # how many scans and events saw it while it was open
    closed_at: str = ""
    version: int = 0  # of the open record: every update is conditional on the version it read

    @property
    def is_open(self) -> bool:
        """Open until closed; a record from before fingerprints was each its own, finished, event."""
        return bool(self.fingerprint) and not self.closed_at

    def history_key(self) -> str:
        suffix = f"#{self.fingerprint}" if self.fingerprint else ""
        return f"DRIFT#{self.detected_at}#{self.event_id}{suffix}"


class DriftOverride(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    mode: str
    reason: str = ""
    at: str = ""


class PauseState(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    paused: bool = False
    by: str = ""
    reason: str = ""
    at: str = ""


class RemediationWindow(BaseModel):
    """The remediations of the last hour (epoch seconds) and the last execution started, versioned."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    starts: tuple[int, ...] = ()
    version: int = 0
    last_execution_name: str = ""
    last_execution_arn: str = ""
    last_started_at: int = 0

    def recent(self, now: int, window_seconds: int = 3600) -> tuple[int, ...]:
        return tuple(s for s in self.starts if s > now - window_seconds)


class DriftStore(StoreClient):
    """The store, with the drift items (a subclass so the reconcile steps' client stays as it is)."""

    def claim_drift_event(self, workspace_key: str, event_id: str, now: int) -> bool:
        """Mark the event handled for the workspace; False when it was already (a duplicate delivery).

        Only a failed condition means "already claimed": throttling, access denied or an unreachable table
        raise (the domain's AWS errors), so the event is retried or surfaces instead of being dropped."""
        return self._conditional(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(workspace_key),
                "sk": f"DRIFTEVT#{event_id}",
                "claimed_at": now,
                "expires_at": now + DRIFT_EVENT_TTL_SECONDS,
            },
            ConditionExpression=Attr("pk").not_exists(),
        )

    def release_drift_event(self, workspace_key: str, event_id: str) -> None:
        """Forget a claim whose handling failed half-way, so that the retry handles the event again."""
        self._call(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": workspace_pk(workspace_key), "sk": f"DRIFTEVT#{event_id}"},
        )

    def _open_item(self, record: DriftRecord) -> dict[str, Any]:
        return {
            "pk": workspace_pk(record.workspace_key),
            "sk": f"DRIFTOPEN#{record.fingerprint}",
            "version": record.version,
            "record": record.model_dump_json(),
        }

    def open_drift(self, record: DriftRecord) -> DriftRecord | None:
        """Store a new open drift (version 1); None when one with its fingerprint is open already (another
        scan or event opened it first: update that one instead)."""
        opened = record.model_copy(
            update={"version": 1, "last_seen_at": record.last_seen_at or record.detected_at}
        )
        written = self._conditional(
            "PutItem",
            self._t.put_item,
            Item=self._open_item(opened),
            ConditionExpression=Attr("pk").not_exists(),
        )
        return opened if written else None

    def save_open_drift(self, record: DriftRecord) -> DriftRecord | None:
        """Write an update of an open drift read at record.version; None when it changed (or closed) since."""
        saved = record.model_copy(update={"version": record.version + 1})
        written = self._conditional(
            "PutItem",
            self._t.put_item,
            Item=self._open_item(saved),
            ConditionExpression=Attr("version").eq(record.version),
        )
        return saved if written else None

    def list_open_drift(self, workspace_key: str) -> list[DriftRecord]:
        """The workspace's open drifts (few: one per thing that is wrong right now)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(workspace_pk(workspace_key))
            & Key("sk").begins_with("DRIFTOPEN#")
        }
        while True:
            page = self._call("Query", self._t.query, **kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [
            DriftRecord.model_validate_json(i["record"]).model_copy(update={"version": int(i["version"])})
            for i in items
        ]

    def close_drift(self, record: DriftRecord) -> bool:
        """Move an open drift (read at record.version, closed_at and outcome set) to the history; False when
        it changed since it was read (seen again: it stays open).

        The history item is written first and its key is the record's own: a close that stops half-way
        leaves a copy that the next close overwrites, and list_drift shows the open one meanwhile."""
        assert record.closed_at, "close_drift needs closed_at"
        self._put_history(record.workspace_key, record.history_key(), "record", record)
        if self._conditional(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": workspace_pk(record.workspace_key), "sk": f"DRIFTOPEN#{record.fingerprint}"},
            ConditionExpression=Attr("version").eq(record.version),
        ):
            return True
        self._call(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": workspace_pk(record.workspace_key), "sk": record.history_key()},
        )
        return False

    def put_drift(self, record: DriftRecord) -> None:
        """A record straight into the history (a drift without a fingerprint)."""
        self._put_history(record.workspace_key, record.history_key(), "record", record)

    def list_drift(self, workspace_key: str, limit: int = 20) -> list[DriftRecord]:
        """The workspace's drift records, open and closed, the most recently seen first."""
        open_records = self.list_open_drift(workspace_key)
        opened = {(r.fingerprint, r.detected_at) for r in open_records}
        closed = [
            r
            for r in self._list_history(workspace_key, "DRIFT#", "record", DriftRecord, limit)
            if (r.fingerprint, r.detected_at) not in opened
        ]
        every = open_records + closed
        every.sort(key=lambda r: r.last_seen_at or r.detected_at, reverse=True)
        return every[:limit]

    def get_drift_override(self, workspace_key: str) -> DriftOverride | None:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "DRIFT_OVERRIDE"}
        ).get("Item")
        if not item:
            return None
        return DriftOverride(mode=item["mode"], reason=item.get("reason", ""), at=item.get("at", ""))

    def set_drift_override(self, workspace_key: str, mode: str, reason: str) -> DriftOverride:
        override = DriftOverride(mode=mode, reason=reason, at=now_iso())
        self._call(
            "PutItem",
            self._t.put_item,
            Item={"pk": workspace_pk(workspace_key), "sk": "DRIFT_OVERRIDE", **override.model_dump()},
        )
        return override

    def clear_drift_override(self, workspace_key: str) -> None:
        self._call(
            "DeleteItem", self._t.delete_item, Key={"pk": workspace_pk(workspace_key), "sk": "DRIFT_OVERRIDE"}
        )

    def get_pause(self) -> PauseState:
        item = self._call("GetItem", self._t.get_item, Key={"pk": CONFIG_PK, "sk": "PAUSE"}).get("Item")
        if not item:
            return PauseState()
        return PauseState(
            paused=bool(item.get("paused")),
            by=item.get("by", ""),
            reason=item.get("reason", ""),
            at=item.get("at", ""),
        )

    def set_pause(self, paused: bool, by: str, reason: str = "") -> PauseState:
        state = PauseState(paused=paused, by=by, reason=reason, at=now_iso())
        self._call("PutItem", self._t.put_item, Item={"pk": CONFIG_PK, "sk": "PAUSE", **state.model_dump()})
        return state

    def get_remediations(self, workspace_key: str) -> RemediationWindow:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "REMEDIATIONS"}
        ).get("Item")
        if not item:
            return RemediationWindow()
        return RemediationWindow(
            starts=tuple(int(s) for s in item.get("starts", [])),
            version=int(item.get("version", 0)),
            last_execution_name=item.get("last_execution_name", ""),
            last_execution_arn=item.get("last_execution_arn", ""),
            last_started_at=int(item.get("last_started_at", 0)),
        )

    def reserve_remediation(
        self, workspace_key: str, seen: RemediationWindow, now: int, execution_name: str, execution_arn: str
    ) -> bool:
        """Count a remediation start, unless the window changed since `seen` was read (then False)."""
        condition = Attr("version").eq(seen.version) if seen.version else Attr("pk").not_exists()
        return self._conditional(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(workspace_key),
                "sk": "REMEDIATIONS",
                "starts": [*seen.recent(now), now],
                "version": seen.version + 1,
                "last_execution_name": execution_name,
                "last_execution_arn": execution_arn,
                "last_started_at": now,
            },
            ConditionExpression=condition,
        )

    # --- the scan's marker: least recently scanned first ---

    def mark_scanned(self, workspace_key: str, at: float, scan_id: str) -> None:
        """Record that the scan `scan_id` reached the workspace at `at` (epoch seconds)."""
        self._call(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(workspace_key),
                "sk": "SCANNED",
                "scanned_at": scanned_stamp(at),
                "scan_id": scan_id,
            },
        )

    def get_scanned(self, workspace_key: str) -> str | None:
        """When the scan last reached the workspace (scanned_stamp format), or None."""
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "SCANNED"}
        ).get("Item")
        return str(item["scanned_at"]) if item else None

    def list_scan_candidates(self) -> list["ScanCandidate"]:
        """Every workspace with a desired spec and no decommission, with its SCANNED time and lease expiry:
        one paginated Scan, not a read per workspace, so the plan costs the same whatever the fleet's size."""
        desired: set[str] = set()
        scanned: dict[str, str] = {}
        leases: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("pk").begins_with("WS#")
            & Attr("sk").is_in(["DESIRED", "SCANNED", "LEASE"]),
            "ProjectionExpression": "#pk, #sk, #scanned_at, #expires_at, #decommission",
            "ExpressionAttributeNames": {
                "#pk": "pk",
                "#sk": "sk",
                "#scanned_at": "scanned_at",
                "#expires_at": "expires_at",
                "#decommission": "decommission",
            },
        }
        while True:
            page = self._call("Scan", self._t.scan, **kwargs)
            for item in page.get("Items", []):
                key = str(item["pk"]).removeprefix("WS#")
                if item["sk"] == "DESIRED":
                    # A decommissioned workspace (or one being decommissioned) is not the scan's to repair.
                    if not item.get("decommission"):
                        desired.add(key)
                elif item["sk"] == "SCANNED":
                    scanned[key] = str(item.get("scanned_at", ""))
                else:
                    leases[key] = int(item.get("expires_at", 0))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [
            ScanCandidate(
                workspace_key=key,
                last_scanned_at=scanned.get(key) or None,
                lease_expires_at=leases.get(key, 0),
            )
            for key in sorted(desired)
        ]


class ScanCandidate(BaseModel):
    """A workspace as the scan's plan sees it: when the scan last reached it, and its lease's expiry."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    workspace_key: str
    last_scanned_at: str | None = None  # ISO 8601 UTC, fixed format: text order is time order
    lease_expires_at: int = 0


def scanned_stamp(at: float) -> str:
    """The SCANNED item's time: one fixed format (milliseconds, +00:00), so comparing texts compares times."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
