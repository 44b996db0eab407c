"""The store: one DynamoDB table holding desired specs, leases, observed state, run history and the index
from resource ids to the workspaces that use them.

Items (pk, sk):
  WS#<key>, DESIRED          the last-known-good spec (its preflight passed), its hash and generation;
                             `decommission` marks a workspace being or having been decommissioned (the spec
                             stays as history)
  WS#<key>, PENDING          the newest spec received that is not the desired one (yet): waiting for its
                             preflight, or rejected with the reason
  WS#<key>, LEASE            holder (execution name = fencing token), holder ARN, expiry, dirty flag
  WS#<key>, OBSERVED         every resource id with its state, health, last run, last error
  WS#<key>, RUN#<ts>#<name>  one item per execution: outcome, timings, error
  RES#<resource id>, WS#<key>  which workspaces use a resource (a shared endpoint maps to several)

Drift's items in the same table (its records, the remediation window, the pause switch) are drift_store.py's.
"""

import json
import time
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from dbx_privatelink.aws.table import TableClient
from dbx_privatelink.clock import now_iso
from dbx_privatelink.decommission import DecommissionMode
from dbx_privatelink.errors import LeaseLostError

if TYPE_CHECKING:
    from dbx_privatelink.spec import WorkspaceSpec

LEASE_TTL_SECONDS = 6 * 3600


DecommissionState = Literal["decommissioning", "decommissioned", "failed"]


class DecommissionMarker(BaseModel):
    """A decommission of the workspace, started or done: drift leaves such a workspace alone (events start
    nothing, the scan skips it), `status` shows it, and an apply of its spec manages it again."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    state: DecommissionState
    mode: DecommissionMode
    execution_name: str = ""
    execution_arn: str = ""
    started_at: str = ""
    ended_at: str = ""
    # An in-progress marker past this (the lease's lifetime) belongs to a decommission that died.
    expires_at: int = 0
    error: str | None = None
    cause: str | None = None

    def clearable(self, now: float) -> bool:
        """Whether an apply of the spec may take the workspace back: not while a decommission runs."""
        return self.state != "decommissioning" or self.expires_at < now


class Desired(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    spec: dict[str, Any]
    spec_hash: str
    generation: int
    decommission: DecommissionMarker | None = None


PendingState = Literal["pending", "rejected"]


class PendingSpec(BaseModel):
    """A spec received but not the desired state: it becomes desired once its preflight passed; a run that
    fails before then leaves it here, rejected with the reason, and the desired spec as it was."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    spec: dict[str, Any]
    spec_hash: str
    state: PendingState
    execution_name: str = ""
    received_at: str = ""
    rejected_at: str = ""
    error: str | None = None
    cause: str | None = None


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    holder: str
    holder_arn: str = ""
    expires_at: int = 0
    dirty: bool = False


class LeaseAttempt(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    acquired: bool
    holder: Lease | None = None


class RunRecord(BaseModel):
    model_config = ConfigDict(defer_build=True)

    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    ended_at: str = Field(default_factory=now_iso)
    outcome: str  # SUCCEEDED | FAILED
    generation: int = 0
    error: str | None = None
    cause: str | None = None
    summary: dict[str, Any] = {}


def workspace_pk(key: str) -> str:
    return f"WS#{key}"


def _desired(item: dict[str, Any]) -> Desired:
    marker = item.get("decommission")
    return Desired(
        spec=json.loads(item["spec"]),
        spec_hash=item["spec_hash"],
        generation=int(item["generation"]),
        decommission=DecommissionMarker.model_validate_json(marker) if marker else None,
    )


class StoreClient(TableClient):
    """All reads and writes of the application's table."""

    # --- desired ---

    def get_desired(self, workspace_key: str) -> Desired | None:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "DESIRED"}
        ).get("Item")
        if not item:
            return None
        return _desired(item)

    def put_desired(self, spec: "WorkspaceSpec", *, holder: str | None = None) -> Desired:
        """Store the spec; the generation goes up by one when (and only when) the spec changed. Storing the
        spec of a decommissioned workspace (an apply) manages it again: the marker goes, unless a
        decommission is running (then the marker stays and the lease decides). With `holder` the write is
        fenced by the lease: LeaseLostError when that execution no longer holds it."""
        for _ in range(5):
            current = self.get_desired(spec.workspace_key)
            marker = current.decommission if current else None
            kept = marker if marker is not None and not marker.clearable(time.time()) else None
            if current and current.spec_hash == spec.spec_hash():
                if marker is None or kept is not None:
                    return current
                if holder is None:
                    if self._clear_decommission(spec.workspace_key, current):
                        return current.model_copy(update={"decommission": None})
                    continue
            generation = (current.generation if current else 0) + (
                0 if current and current.spec_hash == spec.spec_hash() else 1
            )
            item: dict[str, Any] = {
                "pk": workspace_pk(spec.workspace_key),
                "sk": "DESIRED",
                "spec": spec.canonical_json(),
                "spec_hash": spec.spec_hash(),
                "generation": generation,
                "updated_at": now_iso(),
            }
            if kept is not None:
                item["decommission"] = kept.model_dump_json()
            if not self._write_desired(item, current.generation if current else None, holder):
                continue  # another writer moved the generation: read again
            return Desired(
                spec=spec.model_dump(mode="json"),
                spec_hash=spec.spec_hash(),
                generation=generation,
                decommission=kept,
            )
        raise RuntimeError(f"desired spec of {spec.workspace_key} kept changing under this write")

    def _write_desired(self, item: dict[str, Any], seen_generation: int | None, holder: str | None) -> bool:
        """Put the DESIRED item unless its generation moved since it was read (False); with `holder`, in one
        transaction with a check that the execution holds the lease (LeaseLostError when not)."""
        if holder is None:
            condition = (
                Attr("pk").not_exists() if seen_generation is None else Attr("generation").eq(seen_generation)
            )
            return self._conditional("PutItem", self._t.put_item, Item=item, ConditionExpression=condition)
        # The table resource's client takes Python values, as the table's own calls do.
        put: dict[str, Any] = {"TableName": self._t.name, "Item": item}
        if seen_generation is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "generation = :g"
            put["ExpressionAttributeValues"] = {":g": seen_generation}
        lease_check = {
            "TableName": self._t.name,
            "Key": {"pk": item["pk"], "sk": "LEASE"},
            "ConditionExpression": "holder = :h",
            "ExpressionAttributeValues": {":h": holder},
        }
        try:
            self._call(
                "TransactWriteItems",
                self._t.meta.client.transact_write_items,
                TransactItems=[{"ConditionCheck": lease_check}, {"Put": put}],
            )
        except ClientError:
            lease = self.get_lease(str(item["pk"]).removeprefix("WS#"))
            if lease is None or lease.holder != holder:
                raise LeaseLostError(
                    f"execution {holder} no longer holds the lease of {item['pk'].removeprefix('WS#')} "
                    f"(now {lease.holder if lease else 'nobody'}): the spec was not made the desired one"
                ) from None
            return False
        return True

    # --- pending: a spec received, not (yet) the desired one ---

    def put_pending(self, spec: "WorkspaceSpec", execution_name: str) -> int:
        """Keep the spec as pending (the newest one received wins) unless it is the desired spec already;
        returns the generation it has or will have once desired."""
        current = self.get_desired(spec.workspace_key)
        if current and current.spec_hash == spec.spec_hash():
            return current.generation
        self._call(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(spec.workspace_key),
                "sk": "PENDING",
                "spec": spec.canonical_json(),
                "spec_hash": spec.spec_hash(),
                "state": "pending",
                "execution_name": execution_name,
                "received_at": now_iso(),
            },
        )
        return (current.generation if current else 0) + 1

    def get_pending(self, workspace_key: str) -> PendingSpec | None:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "PENDING"}
        ).get("Item")
        if not item:
            return None
        return PendingSpec(
            spec=json.loads(item["spec"]),
            spec_hash=item["spec_hash"],
            state=item["state"],
            execution_name=item.get("execution_name", ""),
            received_at=item.get("received_at", ""),
            rejected_at=item.get("rejected_at", ""),
            error=item.get("error"),
            cause=item.get("cause"),
        )

    def reject_pending(self, workspace_key: str, spec_hash: str, error: str, cause: str) -> bool:
        """Record why the pending spec failed before it became desired; False when the pending spec is
        another one (a newer spec arrived meanwhile) or there is none."""
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "PENDING"},
            UpdateExpression="SET #state = :r, rejected_at = :at, #error = :e, cause = :c",
            ConditionExpression=Attr("spec_hash").eq(spec_hash),
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues={":r": "rejected", ":at": now_iso(), ":e": error, ":c": cause},
        )

    def clear_pending(self, workspace_key: str, spec_hash: str) -> None:
        """Forget the pending spec once it became desired (a newer pending spec stays)."""
        self._conditional(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "PENDING"},
            ConditionExpression=Attr("spec_hash").eq(spec_hash),
        )

    def _clear_decommission(self, workspace_key: str, seen: Desired) -> bool:
        """Remove the marker `seen` carries; False when the item changed since it was read."""
        assert seen.decommission is not None
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "DESIRED"},
            UpdateExpression="REMOVE decommission",
            ConditionExpression=Attr("generation").eq(seen.generation)
            & Attr("decommission").eq(seen.decommission.model_dump_json()),
        )

    # --- decommission ---

    def set_decommission(self, workspace_key: str, marker: DecommissionMarker) -> bool:
        """Mark the workspace (its desired spec stays as history); False when it has no desired spec."""
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "DESIRED"},
            UpdateExpression="SET decommission = :m",
            ConditionExpression=Attr("pk").exists(),
            ExpressionAttributeValues={":m": marker.model_dump_json()},
        )

    def mark_decommissioning(
        self, workspace_key: str, mode: DecommissionMode, execution_name: str, execution_arn: str, now: int
    ) -> bool:
        """Mark a decommission started now, for as long as the lease it takes lasts (set_decommission)."""
        marker = DecommissionMarker(
            state="decommissioning",
            mode=mode,
            execution_name=execution_name,
            execution_arn=execution_arn,
            started_at=now_iso(),
            expires_at=now + LEASE_TTL_SECONDS,
        )
        return self.set_decommission(workspace_key, marker)

    def list_desired(self) -> dict[str, Desired]:
        """Every workspace's desired spec and marker, by key (one paginated Scan: for decommission, not for
        hot paths)."""
        found: dict[str, Desired] = {}
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("pk").begins_with("WS#") & Attr("sk").eq("DESIRED")
        }
        while True:
            page = self._call("Scan", self._t.scan, **kwargs)
            for item in page.get("Items", []):
                found[str(item["pk"]).removeprefix("WS#")] = _desired(item)
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def unindex_workspace(self, workspace_key: str) -> int:
        """Forget which resources the workspace uses (drift events about them then map to no workspace);
        the entries of other workspaces that share a resource stay. Returns how many were removed."""
        keys: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("pk").begins_with("RES#") & Attr("sk").eq(workspace_pk(workspace_key)),
            "ProjectionExpression": "pk, sk",
        }
        while True:
            page = self._call("Scan", self._t.scan, **kwargs)
            keys += [{"pk": str(i["pk"]), "sk": str(i["sk"])} for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        with self._t.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key=key)
        return len(keys)

    # --- lease ---

    def get_lease(self, workspace_key: str) -> Lease | None:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "LEASE"}
        ).get("Item")
        if not item:
            return None
        return Lease(
            holder=item["holder"],
            holder_arn=item.get("holder_arn", ""),
            expires_at=int(item.get("expires_at", 0)),
            dirty=bool(item.get("dirty", False)),
        )

    def acquire_lease(
        self, workspace_key: str, holder: str, holder_arn: str, now: int, *, take_over_from: str | None = None
    ) -> LeaseAttempt:
        """Take the lease when free, expired, already ours, or held by `take_over_from` (a dead holder)."""
        condition = Attr("pk").not_exists() | Attr("expires_at").lt(now) | Attr("holder").eq(holder)
        if take_over_from:
            condition = condition | Attr("holder").eq(take_over_from)
        taken = self._conditional(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(workspace_key),
                "sk": "LEASE",
                "holder": holder,
                "holder_arn": holder_arn,
                "expires_at": now + LEASE_TTL_SECONDS,
                "dirty": False,
                "taken_at": now_iso(),
            },
            ConditionExpression=condition,
        )
        if not taken:
            return LeaseAttempt(acquired=False, holder=self.get_lease(workspace_key))
        return LeaseAttempt(acquired=True)

    def mark_dirty(self, workspace_key: str, holder: str) -> bool:
        """Ask the current holder to reconcile once more; False when the lease changed hands meanwhile."""
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "LEASE"},
            UpdateExpression="SET dirty = :t",
            ConditionExpression=Attr("holder").eq(holder),
            ExpressionAttributeValues={":t": True},
        )

    def release_lease(self, workspace_key: str, holder: str, *, allow_rerun: bool) -> bool:
        """Release the lease; when it is dirty and a rerun is allowed, keep it, clear dirty and return True."""
        if allow_rerun:
            kept = self._conditional(
                "UpdateItem",
                self._t.update_item,
                Key={"pk": workspace_pk(workspace_key), "sk": "LEASE"},
                UpdateExpression="SET dirty = :f",
                ConditionExpression=Attr("holder").eq(holder) & Attr("dirty").eq(True),
                ExpressionAttributeValues={":f": False},
            )
            if kept:
                return True
        # Refused when the lease is not ours any more: then there is nothing to release.
        self._conditional(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": workspace_pk(workspace_key), "sk": "LEASE"},
            ConditionExpression=Attr("holder").eq(holder),
        )
        return False

    # --- observed state and history ---

    def get_observed(self, workspace_key: str) -> dict[str, Any] | None:
        item = self._call(
            "GetItem", self._t.get_item, Key={"pk": workspace_pk(workspace_key), "sk": "OBSERVED"}
        ).get("Item")
        return json.loads(item["state"]) if item else None

    def update_observed(self, workspace_key: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the observed state (top-level keys replaced) and return the result."""
        state = self.get_observed(workspace_key) or {}
        state.update(changes)
        state["updated_at"] = now_iso()
        self._call(
            "PutItem",
            self._t.put_item,
            Item={
                "pk": workspace_pk(workspace_key),
                "sk": "OBSERVED",
                "state": json.dumps(state, sort_keys=True),
            },
        )
        return state

    def _put_history(self, workspace_key: str, sort_key: str, attribute: str, record: BaseModel) -> None:
        """One history item (a run, a drift record): its sort key orders the workspace's items in time."""
        self._call(
            "PutItem",
            self._t.put_item,
            Item={"pk": workspace_pk(workspace_key), "sk": sort_key, attribute: record.model_dump_json()},
        )

    def _list_history[M: BaseModel](
        self, workspace_key: str, prefix: str, attribute: str, model: type[M], limit: int
    ) -> list[M]:
        """The newest `limit` history items of one kind."""
        raw = self._call(
            "Query",
            self._t.query,
            KeyConditionExpression=Key("pk").eq(workspace_pk(workspace_key)) & Key("sk").begins_with(prefix),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [model.model_validate_json(i[attribute]) for i in raw.get("Items", [])]

    def add_run(self, workspace_key: str, run: RunRecord) -> None:
        self._put_history(workspace_key, f"RUN#{run.ended_at}#{run.execution_name}", "run", run)

    def list_runs(self, workspace_key: str, limit: int = 10) -> list[RunRecord]:
        return self._list_history(workspace_key, "RUN#", "run", RunRecord, limit)

    def index_resources(self, workspace_key: str, resource_ids: list[str]) -> None:
        """Record that the workspace uses these resources (for mapping drift events back to it)."""
        with self._t.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for rid in sorted(set(resource_ids)):
                batch.put_item(
                    Item={
                        "pk": f"RES#{rid}",
                        "sk": workspace_pk(workspace_key),
                        "workspace_key": workspace_key,
                    }
                )

    def workspaces_using(self, resource_id: str) -> list[str]:
        raw = self._call("Query", self._t.query, KeyConditionExpression=Key("pk").eq(f"RES#{resource_id}"))
        return sorted(i["workspace_key"] for i in raw.get("Items", []))

    def list_workspaces(self, *, with_pending: bool = False) -> list[str]:
        """Every workspace with a desired spec, and with `with_pending` those whose only spec was rejected or
        waits for its preflight (a scan: the table holds few items per workspace)."""
        keys: set[str] = set()
        kinds = ["DESIRED", "PENDING"] if with_pending else ["DESIRED"]
        kwargs: dict[str, Any] = {"FilterExpression": Attr("sk").is_in(kinds), "ProjectionExpression": "pk"}
        while True:
            page = self._call("Scan", self._t.scan, **kwargs)
            keys.update(i["pk"].removeprefix("WS#") for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(keys)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
