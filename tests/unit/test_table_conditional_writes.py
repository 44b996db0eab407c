"""The store's and the ledger's conditional writes (aws/table.py): only a condition that did not hold means
"refused"; throttling, access denied or an unreachable table raise the domain's error, so that the write is
retried or surfaces instead of being taken for another writer's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dbx_privatelink.aws.table import TableClient
from dbx_privatelink.errors import AwsAccessDeniedError, AwsThrottledError
from dbx_privatelink.ledger import LedgerClient
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.store import StoreClient


class FailingTable:
    """A table whose every write fails with one DynamoDB error code (and whose reads find nothing)."""

    name = "table"

    def __init__(self, code: str) -> None:
        self.code = code
        self.writes = 0

    def _fail(self, **kwargs: Any) -> None:
        self.writes += 1
        raise ClientError({"Error": {"Code": self.code, "Message": self.code}}, "Write")

    put_item = update_item = delete_item = _fail

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return {}


KEY = SharedKey("vpc-endpoint", "vpc-0a1b2c3d|com.amazonaws.us-east-1.sts")

# Each conditional write and what it answers when its condition did not hold.
WRITES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "store: take the lease": (
        lambda t: StoreClient(t).acquire_lease("ws-a", "run-1", "arn", 100).acquired,
        False,
    ),
    "store: mark the lease dirty": (lambda t: StoreClient(t).mark_dirty("ws-a", "run-1"), False),
    "store: release the lease": (
        lambda t: StoreClient(t).release_lease("ws-a", "run-1", allow_rerun=True),
        False,
    ),
    "store: reject a pending spec": (lambda t: StoreClient(t).reject_pending("ws-a", "h", "e", "c"), False),
    "ledger: claim for deletion": (lambda t: LedgerClient(t).claim(KEY, "token"), False),
    "ledger: give a claim back": (lambda t: LedgerClient(t).unclaim(KEY, "token"), False),
    "ledger: release a reference": (lambda t: LedgerClient(t).release("ws-a", [KEY]), {}),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_whose_condition_did_not_hold_is_refused_and_any_other_failure_raises(write: str) -> None:
    call, refused = WRITES[write]
    # Given a table that answers the write's condition did not hold
    table = FailingTable("ConditionalCheckFailedException")
    # Then the write is refused, which the caller decides on
    assert call(table) == refused and table.writes >= 1
    # And when the table throttles or refuses access, the domain's error is raised instead
    with pytest.raises(AwsThrottledError):
        call(FailingTable("ProvisionedThroughputExceededException"))
    with pytest.raises(AwsAccessDeniedError):
        call(FailingTable("AccessDeniedException"))


def test_a_conditional_write_that_holds_returns_dynamodbs_answer() -> None:
    # Given a write DynamoDB accepts
    client = TableClient(table=None)
    answer = {"Attributes": {"refs": {"ws-a"}}}
    # Then its answer is returned (the ledger reads the entry as it is now from it)
    assert client._updated("UpdateItem", lambda **kwargs: answer, Key={}) is answer
    assert client._conditional("UpdateItem", lambda **kwargs: answer, Key={}) is True
