"""Shared resources: the owner of record of each, and the workspaces that reference it.

Workspaces share resources: a VPC's interface and gateway endpoints (AWS allows one private-DNS endpoint
per service per VPC) and their Databricks registrations; a DNS VPC's resolver security group, outbound
endpoint and rules; inbound and peered endpoints; the rule associations of a VPC. A workspace's lease
protects only what is the workspace's own, so each shared resource has one entry in the table:

  SHARED#<kind>#<natural key>, META
      kind, key, resource_id (once a run recorded it), created_by (the workspace whose run created it),
      refs (a string set: the workspaces that use it), deleting (the fencing token of a decommission that
      claimed it), lock_holder / lock_expires (a create in progress where the API has no idempotency handle)

How concurrent executions converge on one resource:
- every create carries an idempotency handle derived from the shared resource, never from the workspace
  (ClientToken, CreatorRequestId, a deterministic group name), and a lost race (IdempotentParameterMismatch,
  ResourceExistsException, InvalidGroup.Duplicate, a conflicting private DNS domain) is re-read and adopted;
- the Databricks Account API has no idempotency handle: a registration is made under `lock()`;
- a region-wide quota (Route 53 Resolver endpoints) is counted and reserved under `quota_lock()`
  (QUOTA#<quota>, META): a reservation is a reference to a resource not made yet;
- a workspace refers to its shared resources in preflight, before any step finds or creates one; a
  decommission may delete a shared resource only after `claim()`, which succeeds only while no workspace
  refers to it, and `refer()` refuses a claimed resource (retryably: it is made anew once it is gone).
"""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.conditions import Attr
from pydantic import BaseModel, ConfigDict

from dbx_privatelink.aws.table import TableClient
from dbx_privatelink.errors import SharedResourceBusyError
from dbx_privatelink.shared_key import SharedKey

LOCK_SECONDS = 300  # a create that holds a lock longer than a Lambda can run has died
# A quota's count and reservation take well under a second; a wave of runs queues for it, each cheaper to
# wait here than to be retried by the state machine (which runs all of preflight again).
QUOTA_LOCK_WAIT_S, QUOTA_LOCK_POLL_S = 60.0, 0.25


class SharedRecord(BaseModel):
    """One shared resource's entry: who uses it, who made it, what it is called in AWS or Databricks."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: str
    key: str
    resource_id: str = ""
    created_by: str = ""
    refs: tuple[str, ...] = ()
    deleting: str = ""

    @property
    def shared_key(self) -> SharedKey:
        return SharedKey(self.kind, self.key)  # type: ignore[arg-type]

    def others(self, workspace_key: str) -> tuple[str, ...]:
        """The workspaces besides `workspace_key` that use the resource."""
        return tuple(r for r in self.refs if r != workspace_key)


def _record(item: Mapping[str, Any]) -> SharedRecord:
    return SharedRecord(
        kind=str(item.get("kind", "")),
        key=str(item.get("key", "")),
        resource_id=str(item.get("resource_id", "") or ""),
        created_by=str(item.get("created_by", "") or ""),
        refs=tuple(sorted(str(r) for r in item.get("refs") or ())),
        deleting=str(item.get("deleting", "") or ""),
    )


class LedgerClient(TableClient):
    """Reads and writes of the shared-resource entries (same table as the store)."""

    def get(self, key: SharedKey) -> SharedRecord | None:
        item = self._call("GetItem", self._t.get_item, Key={"pk": key.pk, "sk": "META"}).get("Item")
        return _record(item) if item else None

    def refer(self, workspace_key: str, keys: list[SharedKey]) -> dict[SharedKey, SharedRecord]:
        """Add the workspace to each resource's references (idempotent); returns the entries as they are now.
        A resource a decommission has claimed raises SharedResourceBusyError: it is being deleted."""
        records: dict[SharedKey, SharedRecord] = {}
        for key in sorted(set(keys)):
            answer = self._updated(
                "UpdateItem",
                self._t.update_item,
                Key={"pk": key.pk, "sk": "META"},
                UpdateExpression="ADD refs :ws SET kind = :kind, #key = :key",
                ConditionExpression=Attr("deleting").not_exists(),
                ExpressionAttributeNames={"#key": "key"},
                ExpressionAttributeValues={":ws": {workspace_key}, ":kind": key.kind, ":key": key.key},
                ReturnValues="ALL_NEW",
            )
            if answer is None:
                current = self.get(key)
                raise SharedResourceBusyError(
                    f"{key} is being deleted by {current.deleting if current else 'a decommission'}; it is "
                    "made anew once the deletion finished"
                )
            records[key] = _record(answer["Attributes"])
        return records

    def record(self, key: SharedKey, resource_id: str, *, created_by: str | None = None) -> None:
        """Write the resource's id (and, for a resource this run created, who created it)."""
        update = "SET resource_id = :id"
        values: dict[str, Any] = {":id": resource_id}
        if created_by:
            update += ", created_by = if_not_exists(created_by, :by)"
            values[":by"] = created_by
        self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": key.pk, "sk": "META"},
            UpdateExpression=update,
            # Never resurrect an entry a decommission removed meanwhile.
            ConditionExpression=Attr("pk").exists(),
            ExpressionAttributeValues=values,
        )

    def release(self, workspace_key: str, keys: list[SharedKey]) -> dict[SharedKey, SharedRecord]:
        """Remove the workspace from each resource's references; returns the entries as they are now."""
        records: dict[SharedKey, SharedRecord] = {}
        for key in sorted(set(keys)):
            answer = self._updated(
                "UpdateItem",
                self._t.update_item,
                Key={"pk": key.pk, "sk": "META"},
                UpdateExpression="DELETE refs :ws",
                ConditionExpression=Attr("pk").exists(),
                ExpressionAttributeValues={":ws": {workspace_key}},
                ReturnValues="ALL_NEW",
            )
            if answer is not None:  # no entry: nothing refers to it
                records[key] = _record(answer["Attributes"])
        return records

    def claim(self, key: SharedKey, token: str) -> bool:
        """Mark the resource as being deleted by `token`; False while any workspace still refers to it."""
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": key.pk, "sk": "META"},
            UpdateExpression="SET deleting = :token",
            ConditionExpression=(
                Attr("pk").exists()
                & Attr("refs").not_exists()
                & (Attr("deleting").not_exists() | Attr("deleting").eq(token))
            ),
            ExpressionAttributeValues={":token": token},
        )

    def unclaim(self, key: SharedKey, token: str) -> bool:
        """Give a claim back (a decommission that failed, or kept the resource after all): references may be
        added again. False when `token` does not hold the claim."""
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": key.pk, "sk": "META"},
            UpdateExpression="REMOVE deleting",
            ConditionExpression=Attr("deleting").eq(token),
        )

    def forget(self, key: SharedKey, token: str) -> None:
        """Remove the entry once the resource is gone (only by the decommission that claimed it)."""
        self._conditional(
            "DeleteItem",
            self._t.delete_item,
            Key={"pk": key.pk, "sk": "META"},
            ConditionExpression=Attr("deleting").eq(token),
        )

    @contextmanager
    def lock(self, key: SharedKey, holder: str, now: int) -> Iterator[None]:
        """Hold the resource's create lock for the block: for creates whose API takes no idempotency handle.
        Held by another live holder -> SharedResourceBusyError (the state machine retries the step)."""
        if not self._take(key.pk, holder, now, {"kind": key.kind, "key": key.key}):
            raise SharedResourceBusyError(f"{key} is being created by {self._holder(key.pk)}; retrying")
        try:
            yield
        finally:
            self._give_back(key.pk, holder)

    @contextmanager
    def quota_lock(
        self, quota: str, holder: str, now: Callable[[], float], pause: Callable[[float], None]
    ) -> Iterator[None]:
        """Hold a quota's lock for the block, waiting for it up to QUOTA_LOCK_WAIT_S of the deployment's
        seconds (`pause` sleeps them): preflight counts what the quota holds and reserves its share as one
        step under it, so that two runs that each fit the quota alone cannot together exceed it. Still held
        by another run after that -> SharedResourceBusyError (the state machine retries)."""
        pk = f"QUOTA#{quota}"
        attempts = int(QUOTA_LOCK_WAIT_S / QUOTA_LOCK_POLL_S)
        for attempt in range(attempts):
            if self._take(pk, holder, int(now()), {}):
                break
            if attempt + 1 == attempts:
                raise SharedResourceBusyError(
                    f"the quota {quota} is being counted by {self._holder(pk)}; retrying"
                )
            pause(QUOTA_LOCK_POLL_S)
        try:
            yield
        finally:
            self._give_back(pk, holder)

    def _take(self, pk: str, holder: str, now: int, fields: dict[str, str]) -> bool:
        """Take the lock of the entry `pk` (writing `fields` beside it) unless another live holder has it."""
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values: dict[str, Any] = {":holder": holder, ":expires": now + LOCK_SECONDS}
        values |= {f":f{n}": value for n, value in enumerate(fields.values())}
        update = "SET lock_holder = :holder, lock_expires = :expires" + "".join(
            f", #f{n} = :f{n}" for n in range(len(fields))
        )
        return self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": pk, "sk": "META"},
            UpdateExpression=update,
            ConditionExpression=(
                Attr("lock_holder").not_exists()
                | Attr("lock_holder").eq(holder)
                | Attr("lock_expires").lt(now)
            ),
            **({"ExpressionAttributeNames": names} if names else {}),
            ExpressionAttributeValues=values,
        )

    def _holder(self, pk: str) -> str:
        current = self._call("GetItem", self._t.get_item, Key={"pk": pk, "sk": "META"}).get("Item")
        return str((current or {}).get("lock_holder", "another execution"))

    def _give_back(self, pk: str, holder: str) -> None:
        # Refused when it was taken over after expiry: the taker releases it.
        self._conditional(
            "UpdateItem",
            self._t.update_item,
            Key={"pk": pk, "sk": "META"},
            UpdateExpression="REMOVE lock_holder, lock_expires",
            ConditionExpression=Attr("lock_holder").eq(holder),
        )

    def list_shared(self) -> list[SharedRecord]:
        """Every shared-resource entry (a scan: for status, plan and decommission, not for hot paths)."""
        records: list[SharedRecord] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("pk").begins_with("SHARED#") & Attr("sk").eq("META")
        }
        while True:
            page = self._call("Scan", self._t.scan, **kwargs)
            records += [_record(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(records, key=lambda r: (r.kind, r.key))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
