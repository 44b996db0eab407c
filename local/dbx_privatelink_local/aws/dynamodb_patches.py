"""DynamoDB's atomic writes, which moto (5.2.5) does not give under concurrency.

DynamoDB applies each write to an item atomically: a conditional write checks and writes in one step and
`ADD` to a set never loses another writer's element. moto checks and writes in Python without a lock, so
two threads of its server can both pass a condition, or one can overwrite the other's `ADD`. The
application's coordination rests on those guarantees (the workspace lease, the ledger's references,
claims and locks, the shared pace's schedule), and the fleet tests race executions against each other on
purpose: every writing operation of moto's DynamoDB backend is serialised by one lock, which is what
DynamoDB's per-item atomicity looks like from the outside for the few items the application contends on.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_INSTALLED = False


def _serialised(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    return write


def install() -> None:
    """Serialise moto's DynamoDB writes (idempotent, once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _INSTALLED = True
