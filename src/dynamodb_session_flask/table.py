"""Creating the session table: for deployment scripts, the demo and tests, never called
implicitly by the session interface."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from .settings import DEFAULT_TABLE_NAME

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")

#: The item attribute holding the expiry epoch, to be registered as the table's TTL.
TTL_ATTRIBUTE = "expires"


def create_table(
    table_name: str = DEFAULT_TABLE_NAME,
    *,
    client: DynamoDBClient | None = None,
    endpoint_url: str | None = None,
    exist_ok: bool = True,
) -> None:
    """Create the session table (hash key ``id``, type S, on-demand billing), wait until it
    is active, and enable TTL on its ``expires`` attribute so DynamoDB eventually deletes
    expired sessions (expiry itself is enforced on every read, not left to TTL).

    :param client: a low-level DynamoDB client; one is built from boto3's defaults and
        ``endpoint_url`` otherwise.
    :param exist_ok: when the table already exists, leave it as it is instead of raising.

    Engines without the TimeToLive API (dynalite) get the table without TTL and a logged
    warning. Needs ``dynamodb:CreateTable``, ``DescribeTable`` and ``UpdateTimeToLive``.
    """
    if client is None:
        client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url)
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if not (exist_ok and exc.response["Error"]["Code"] == "ResourceInUseException"):
            raise
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    _enable_ttl(client, table_name)


def _enable_ttl(client: DynamoDBClient, table_name: str) -> None:
    try:
        status = client.describe_time_to_live(TableName=table_name)
        description = status.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code not in ("UnknownOperationException", "ValidationException"):
            raise
        logger.warning(
            "TTL could not be enabled on table %s (%s); expired sessions are still never "
            "loaded, but they stay in the table until deleted",
            table_name,
            code,
        )
