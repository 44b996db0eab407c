"""DynamoDB's atomic writes, which moto (5.2.5) does not give under concurrency.

DynamoDB applies each write to an item atomically: a conditional write checks and writes in one step and
`ADD` to a set never loses another writer's element. moto checks and writes in Python without a lock, so
two threads of its server can both pass a condition, or one can overwrite the other's `ADD`. The
application's coordination rests on those guarantees (the workspace lease, the ledger's references,
claims and locks, the shared pace's schedule), and the fleet tests race executions against each other on
purpose: every writing operation of moto's DynamoDB backend is serialised by one lock, which is what
DynamoDB's per-item atomicity looks like from the outside for the few items the application contends on.

A transaction (TransactWriteItems) is all-or-nothing. moto makes it so by deep-copying every table it
touches before it starts and putting the copy back on failure: a copy of the whole table per transaction,
which made a fleet's local stack spend its time copying the ledger (and, iterating a table while another
thread read it, fail with "dictionary changed size during iteration"). Here the transaction keeps a copy
of the items it names instead, and puts those back on failure; under the write lock nothing else changed
them meanwhile.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_INSTALLED = False


def _serialised(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    return write


class _CopyKeepingTables:
    """The `copy` module as moto's DynamoDB backend sees it: a table is not copied (its transaction's items
    are, by `_item_backups`); everything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_key(backend: Any, op: dict[str, Any]) -> dict[str, Any] | None:
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    if "Key" in op:
        return dict(op["Key"])
    attrs = op.get("Item") or {}
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {name: attrs[name] for name in names if name in attrs}


def _item_backups(
    backend: Any, transact_items: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any], Any]]:
    """(table, key, a copy of the item or None) of every item a transaction names."""
    backups = []
    for entry in transact_items:
        op = next(iter(entry.values()), None) or {}
        key = _item_key(backend, op)
        if key is None:
            continue
        try:
            current = backend.get_item(op["TableName"], key)
        except Exception:  # an invalid key: moto's own validation reports it, nothing was written
            continue
        backups.append((op["TableName"], key, copy.deepcopy(current)))
    return backups


def _transaction(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with _LOCK:
            backups = _item_backups(self, transact_items)
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, item in backups:
                    if item is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, item.to_json()["Attributes"])
                raise

    return transact_write_items


def install() -> None:
    """Serialise moto's DynamoDB writes and roll a failed transaction back item by item (idempotent, once
    per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = _transaction(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
    dynamodb_models.copy = _CopyKeepingTables  # type: ignore[attr-defined,assignment]
    _INSTALLED = True
