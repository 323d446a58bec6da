"""Creating and changing the session table: for deployment scripts, the CLI, the demo and
tests, never called implicitly by the session interface.

The per-user index (see :mod:`.users`) is a global secondary index with hash key
``user_id`` and range key ``handle``, projecting keys only: the frequent refresh and data
writes change neither attribute, so they never write the index.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from .errors import TableSetupError
from .records import HANDLE, USER_ID
from .settings import DEFAULT_TABLE_NAME, DEFAULT_USER_INDEX_NAME

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")

#: The item attribute holding the expiry epoch, to be registered as the table's TTL.
TTL_ATTRIBUTE = "expires"
#: How long :func:`add_user_index` waits by default for DynamoDB to build the index.
INDEX_WAIT_SECONDS = 900.0

_INDEX_ATTRIBUTES = [
    {"AttributeName": USER_ID, "AttributeType": "S"},
    {"AttributeName": HANDLE, "AttributeType": "S"},
]


@dataclass(frozen=True)
class TableState:
    """What :func:`create_table` found or made."""

    #: Whether this call created the table (``False``: it already existed).
    created: bool
    #: Whether TTL is enabled on ``expires``; ``False`` on engines without the TTL API.
    ttl_enabled: bool
    #: Whether the table has the per-user index (of the name asked for).
    user_index: bool


def user_index_definition(index_name: str = DEFAULT_USER_INDEX_NAME) -> dict[str, Any]:
    """The per-user index, as CreateTable and UpdateTable take it."""
    return {
        "IndexName": index_name,
        "KeySchema": [
            {"AttributeName": USER_ID, "KeyType": "HASH"},
            {"AttributeName": HANDLE, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def _client(client: DynamoDBClient | None, endpoint_url: str | None) -> DynamoDBClient:
    if client is not None:
        return client
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url)


def create_table(
    table_name: str = DEFAULT_TABLE_NAME,
    *,
    client: DynamoDBClient | None = None,
    endpoint_url: str | None = None,
    exist_ok: bool = True,
    user_index: bool = True,
    index_name: str = DEFAULT_USER_INDEX_NAME,
) -> TableState:
    """Create the session table (hash key ``id``, type S, on-demand billing) with the
    per-user index, wait until it is active, and enable TTL on its ``expires`` attribute
    so DynamoDB eventually deletes expired sessions (expiry itself is enforced on every
    read, not left to TTL).

    :param client: a low-level DynamoDB client; one is built from boto3's defaults and
        ``endpoint_url`` otherwise.
    :param exist_ok: when the table already exists, leave it as it is (only enabling TTL
        if it is off) instead of raising. An existing table without the index keeps
        lacking it, with a logged warning: adding an index to a large table is a long
        operation, for :func:`add_user_index` to do on purpose.
    :param user_index: create the per-user index (named ``index_name``) that
        ``user_sessions()`` and the other per-user calls need.

    Engines without the TimeToLive API (dynalite) get the table without TTL and a logged
    warning. Needs ``dynamodb:CreateTable``, ``DescribeTable`` and ``UpdateTimeToLive``.
    """
    client = _client(client, endpoint_url)
    attributes = [{"AttributeName": "id", "AttributeType": "S"}]
    extra: dict[str, Any] = {}
    if user_index:
        attributes += _INDEX_ATTRIBUTES
        extra["GlobalSecondaryIndexes"] = [user_index_definition(index_name)]
    created = True
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=attributes,  # type: ignore[arg-type]
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
    except ClientError as exc:
        if not (exist_ok and exc.response["Error"]["Code"] == "ResourceInUseException"):
            raise
        created = False
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    has_index = index_name in _indexes(client, table_name)
    if user_index and not has_index:
        logger.warning(
            "Table %s exists without the per-user index %s; add it with `flask "
            "dynamodb-session add-user-index` (or add_user_index())",
            table_name,
            index_name,
        )
    return TableState(created, _enable_ttl(client, table_name), has_index)


def add_user_index(
    table_name: str = DEFAULT_TABLE_NAME,
    *,
    client: DynamoDBClient | None = None,
    endpoint_url: str | None = None,
    index_name: str = DEFAULT_USER_INDEX_NAME,
    wait_seconds: float | None = INDEX_WAIT_SECONDS,
) -> bool:
    """Add the per-user index to an existing table (one UpdateTable), and wait up to
    ``wait_seconds`` (``None``: do not wait) for DynamoDB to build it over the items
    already there. Sessions keep working meanwhile; the per-user calls raise
    ``UserIndexMissingError`` until the index is ACTIVE.

    :returns: ``False`` when the index was already there (nothing changed).
    :raises TableSetupError: when the engine did not add the index (dynalite cannot add an
        index to an existing table: create a new table with :func:`create_table`), or it
        was not ACTIVE within ``wait_seconds``.

    Needs ``dynamodb:DescribeTable`` and ``UpdateTable``.
    """
    client = _client(client, endpoint_url)
    if index_name in _indexes(client, table_name):
        if wait_seconds is not None:
            _wait_for_index(client, table_name, index_name, wait_seconds)
        return False
    definition = user_index_definition(index_name)
    table = client.describe_table(TableName=table_name)["Table"]
    if table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED":
        # A provisioned table's index needs its own capacity; the table's is a fair start.
        throughput = table.get("ProvisionedThroughput", {})
        definition["ProvisionedThroughput"] = {
            "ReadCapacityUnits": max(1, throughput.get("ReadCapacityUnits", 1)),
            "WriteCapacityUnits": max(1, throughput.get("WriteCapacityUnits", 1)),
        }
    unsupported = f"the DynamoDB endpoint did not add index {index_name!r} to table {table_name!r}"
    advice = (
        "some local engines (dynalite) cannot add an index to an existing table: create "
        "a new table with the index (`flask dynamodb-session create-table`) instead"
    )
    try:
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=_INDEX_ATTRIBUTES,  # type: ignore[arg-type]
            GlobalSecondaryIndexUpdates=[{"Create": definition}],  # type: ignore[typeddict-item]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        message = exc.response["Error"].get("Message", "")
        raise TableSetupError(f"{unsupported} ({message}); {advice}") from exc
    # dynalite answers UpdateTable with success and silently ignores the new index.
    if index_name not in _indexes(client, table_name):
        raise TableSetupError(f"{unsupported} although it accepted the request; {advice}")
    if wait_seconds is not None:
        _wait_for_index(client, table_name, index_name, wait_seconds)
    return True


def _indexes(client: DynamoDBClient, table_name: str) -> dict[str, Any]:
    table = client.describe_table(TableName=table_name)["Table"]
    return {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}


def _wait_for_index(
    client: DynamoDBClient, table_name: str, index_name: str, wait_seconds: float
) -> None:
    """Poll DescribeTable until the index is ACTIVE and done backfilling."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        index = _indexes(client, table_name).get(index_name)
        if index is not None and index.get("IndexStatus", "ACTIVE") == "ACTIVE":
            if not index.get("Backfilling"):
                return
        if time.monotonic() + delay > deadline:
            status = "missing" if index is None else index.get("IndexStatus")
            raise TableSetupError(
                f"index {index_name!r} of table {table_name!r} is still {status} after "
                f"{wait_seconds:.0f} s; DynamoDB goes on building it: check again later"
            )
        time.sleep(delay)
        # Building an index over a large table takes minutes: poll gently.
        delay = min(5.0, delay * 2)


def _enable_ttl(client: DynamoDBClient, table_name: str) -> bool:
    try:
        status = client.describe_time_to_live(TableName=table_name)
        description = status.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return True
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
            "loaded, but they stay in the table until deleted (`flask dynamodb-session "
            "purge-expired` deletes them)",
            table_name,
            code,
        )
        return False
    return True
