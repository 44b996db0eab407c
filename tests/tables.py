"""The application's table in moto, for tests that run domain functions without the deployed template."""

from __future__ import annotations

from typing import Any


def app_table(session: Any, name: str = "dbx-privatelink-test", endpoint_url: str | None = None) -> str:
    """Create the table as template.yaml defines it (pk, sk; on demand) and return its name."""
    session.client("dynamodb", endpoint_url=endpoint_url).create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
