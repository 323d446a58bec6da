"""The fault proxy itself: an answer lost after the engine applied the write.

DynamoDB can apply a write and the connection break before its answer arrives; botocore
then sends the same request again. ``FaultProxy.lose_answer`` reproduces that: the engine
gets the request and answers, the client gets a connection reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from .engines import engine_client
from .fault_proxy import FaultProxy, is_conditional

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def client_through(proxy: FaultProxy, attempts: int) -> DynamoDBClient:
    return engine_client(
        proxy.url, read_timeout=5, retries={"mode": "standard", "total_max_attempts": attempts}
    )


def stored(admin_client: DynamoDBClient, table_name: str, key: str) -> dict[str, object] | None:
    item = admin_client.get_item(TableName=table_name, Key={"id": {"S": key}}, ConsistentRead=True)
    return item.get("Item")  # type: ignore[return-value]


def test_lost_answer_the_engine_applied_the_write_and_the_client_saw_a_reset(
    proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    client = client_through(proxy, attempts=1)
    proxy.lose_answer("PutItem", times=1)

    with pytest.raises(ConnectionClosedError):
        client.put_item(TableName=table_name, Item={"id": {"S": "a"}, "v": {"S": "1"}})

    assert stored(admin_client, table_name, "a") == {"id": {"S": "a"}, "v": {"S": "1"}}
    assert proxy.count("PutItem") == 1
    assert proxy.injected["lose_answer"] == 1
    [lost] = proxy.lost_answers
    assert (lost.operation, lost.status, lost.applied) == ("PutItem", 200, True)
    assert lost.request["Item"] == {"id": {"S": "a"}, "v": {"S": "1"}}

    # Only the first matching request: the next one is answered as usual.
    client.put_item(TableName=table_name, Item={"id": {"S": "b"}})
    assert proxy.count("PutItem") == 2
    assert len(proxy.lost_answers) == 1


def test_botocore_retries_a_lost_answer_and_the_retry_fails_its_own_condition(
    proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    # The fault the library must survive: the create succeeded, the retry says it exists.
    client = client_through(proxy, attempts=2)
    proxy.lose_answer("PutItem", times=1)

    with pytest.raises(ClientError) as raised:
        client.put_item(
            TableName=table_name,
            Item={"id": {"S": "a"}},
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": "id"},
        )

    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert proxy.count("PutItem") == 2
    assert [answer.applied for answer in proxy.lost_answers] == [True]
    assert stored(admin_client, table_name, "a") == {"id": {"S": "a"}}


def test_lose_answer_only_hits_requests_the_predicate_accepts(
    proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    client = client_through(proxy, attempts=1)
    for key in "ab":
        client.put_item(TableName=table_name, Item={"id": {"S": key}})
    proxy.reset_counts()
    proxy.lose_answer("DeleteItem", times=1, when=is_conditional)

    # Unconditional: not matched, answered as usual.
    client.delete_item(TableName=table_name, Key={"id": {"S": "a"}})
    with pytest.raises(ConnectionClosedError):
        client.delete_item(
            TableName=table_name,
            Key={"id": {"S": "b"}},
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#id": "id"},
        )

    assert stored(admin_client, table_name, "a") is None
    assert stored(admin_client, table_name, "b") is None, "the engine applied the delete"
    assert proxy.count("DeleteItem") == 2
    assert [(a.operation, a.request["Key"]) for a in proxy.lost_answers] == [
        ("DeleteItem", {"id": {"S": "b"}})
    ]


def test_a_lost_answer_to_a_failed_condition_is_reported_as_not_applied(
    proxy: FaultProxy, table_name: str
) -> None:
    client = client_through(proxy, attempts=1)
    client.put_item(TableName=table_name, Item={"id": {"S": "a"}})
    proxy.lose_answer(
        None, times=None, when=lambda request: request.get("Key") == {"id": {"S": "a"}}
    )

    with pytest.raises(ConnectionClosedError):
        client.delete_item(
            TableName=table_name,
            Key={"id": {"S": "a"}},
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": "id"},
        )
    # times=None: every match, until cleared.
    with pytest.raises(ConnectionClosedError):
        client.get_item(TableName=table_name, Key={"id": {"S": "a"}})
    proxy.clear()
    assert "Item" in client.get_item(TableName=table_name, Key={"id": {"S": "a"}})

    assert [(a.operation, a.status, a.applied) for a in proxy.lost_answers] == [
        ("DeleteItem", 400, False),
        ("GetItem", 200, True),
    ]


def test_a_rate_applies_a_fault_to_that_share_of_matching_requests(
    proxy: FaultProxy, table_name: str
) -> None:
    client = client_through(proxy, attempts=1)
    proxy.throttle(operation="GetItem", rate=0.5)
    failures = 0
    for _ in range(40):
        try:
            client.get_item(TableName=table_name, Key={"id": {"S": "a"}})
        except ClientError:
            failures += 1
    assert 0 < failures < 40
    assert proxy.injected["throttle"] == failures
    assert proxy.count("GetItem") == 40
    with pytest.raises(ValueError):
        proxy.drop(rate=1.5)
