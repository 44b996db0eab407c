"""The local stack's DynamoDB keeps DynamoDB's guarantees under threads: a failed transaction changes
nothing, rolled back item by item (moto's own rollback copies whole tables), and transactions that run
beside reads and other writes all land."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from integration.local_servers import operator_client
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
TABLE = "transactions"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(LocalAwsSettings(cloudtrail_delay=3600), time_scale=TimeScale(0.01)) as local:
        yield local


@pytest.fixture
def ddb(aws: LocalAws) -> Any:
    aws.reset()
    client = operator_client(aws, "dynamodb", REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _value(ddb: Any, pk: str) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key=_key(pk)).get("Item")
    return item["v"]["S"] if item else None


def test_a_failed_transaction_changes_no_item_and_keeps_the_table(ddb: Any) -> None:
    # Given an item, and the backend's table object
    ddb.put_item(TableName=TABLE, Item={**_key("kept"), "v": {"S": "before"}})
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE]

    # When a transaction updates it, puts a new item, deletes nothing, then fails its last condition
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": _key("kept"),
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "after"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": {**_key("new"), "v": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": _key("missing"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    # Then DynamoDB's answer, every item as it was, and the same table (rolled back item by item)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _value(ddb, "kept") == "before"
    assert _value(ddb, "new") is None
    assert dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE] is table


def test_transactions_beside_reads_and_writes_all_land(ddb: Any) -> None:
    # Given four writers of transactions and two readers scanning the table, each a bounded loop
    errors: list[BaseException] = []
    rounds = 25

    def write(n: int) -> None:
        try:
            for i in range(rounds):
                ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": TABLE, "Item": {**_key(f"w{n}-{i}"), "v": {"S": "a"}}}},
                        {"Put": {"TableName": TABLE, "Item": {**_key(f"w{n}-{i}", "y"), "v": {"S": "b"}}}},
                    ]
                )
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(rounds):
                ddb.scan(TableName=TABLE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]

    # When they all run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then nothing failed and every transaction's two items are there
    assert not [t for t in threads if t.is_alive()]
    assert errors == []
    count = ddb.scan(TableName=TABLE, Select="COUNT")["Count"]
    assert count == 4 * rounds * 2
