"""The DynamoDB table of user interactions, created idempotently (see app.sources.dynamo)."""

from __future__ import annotations

from typing import Any

from app.sources.dynamo import TTL_ATTRIBUTE


def ensure_table(client: Any, table: str) -> bool:
    """Create the table with its TTL attribute if missing; True when it was created.

    `client` is a boto3 DynamoDB client (the CLI's; offline work needs no event loop).
    """
    created = False
    try:
        client.describe_table(TableName=table)
    except client.exceptions.ResourceNotFoundException:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "user_id", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "user_id", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        created = True
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    return created
