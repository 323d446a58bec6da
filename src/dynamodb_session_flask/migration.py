"""Sessions stored by dynamodb-session-flask 1.x, moved to this package's layout on first
use, so that upgrading does not log everyone out (``SESSION_DYNAMODB_MIGRATE_V1``).

The 1.x layout (written by its dependency dynamodb-session-web 0.2), in the same table and
under the same hash key ``id``::

    id                S: the session id itself, in clear
    data              S: json.dumps of the whole session dict
    created           S: ISO 8601, UTC (this layout's ``created`` is a number)
    accessed          S: ISO 8601, UTC, the last load or save
    expires           N: integer epoch seconds, min(accessed + idle, created + absolute)
    idle_timeout      N: the session's timeouts
    absolute_timeout  N

A 1.x id has the shape of ours for the same ``SESSION_DYNAMODB_SID_BYTE_LENGTH`` and
``SESSION_DYNAMODB_SID_KEYS`` (``token_urlsafe`` of that many bytes, optionally signed
with itsdangerous by those keys), so it passes the same shape check before any call. Only
when the hashed lookup finds nothing is the raw id looked up, and only an item of the 1.x
layout counts: a storage key of this layout, presented as an id, is never loaded.

A live 1.x session is moved under a new id (rotation: the old id was stored in clear) with
its creation time and timeouts, capped by the current settings like every read. The old
item is claimed by a conditional DeleteItem that returns what it held, and only then is
the new record written, so of two requests migrating the same session at once exactly one
moves it; the other sees no session. An expired 1.x session is not moved.

Cost: one GetItem more on a miss, nothing on a hit; a move adds one DeleteItem and one
PutItem, once per session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import codec, users
from .diagnose import explain
from .errors import SessionBackendError
from .ids import loggable_id, storage_key
from .records import SessionRecord

if TYPE_CHECKING:
    from .context import SessionContext

logger = logging.getLogger("dynamodb_session_flask")

#: The claim: the item is still there and still of the 1.x layout.
_STILL_V1 = "attribute_exists(#id) AND attribute_type(#created, :string)"


@dataclass(frozen=True)
class V1Session:
    """A live 1.x session found under ``old_id``, converted to this layout's record."""

    old_id: str
    record: SessionRecord


def find(context: SessionContext, presented_id: str) -> V1Session | None:
    """The live 1.x session stored under ``presented_id``, if there is one: one GetItem.

    :raises SessionBackendError: when DynamoDB cannot answer.
    """
    store = context.store
    with _translated(store.table_name, "GetItem"):
        response = store.client.get_item(
            TableName=store.table_name,
            Key={"id": {"S": presented_id}},
            ConsistentRead=context.settings.consistent_read,
        )
    return _live(context, presented_id, response.get("Item"))


def move(
    context: SessionContext, found: V1Session, user_agent: str | None
) -> tuple[str, SessionRecord] | None:
    """Move ``found`` under a new id: claim the 1.x item with a conditional DeleteItem, then
    write the new record with a PutItem. Returns the new id and record, or ``None`` when
    another request claimed it first (or it was ended, or expired, meanwhile).

    :raises SessionBackendError: when DynamoDB cannot answer; a failure after the claim
        leaves the session ended, never two live copies.
    """
    store = context.store
    try:
        with _translated(store.table_name, "DeleteItem"):
            response = store.client.delete_item(
                TableName=store.table_name,
                Key={"id": {"S": found.old_id}},
                ConditionExpression=_STILL_V1,
                ExpressionAttributeNames={"#id": "id", "#created": "created"},
                ExpressionAttributeValues={":string": {"S": "S"}},
                ReturnValues="ALL_OLD",
            )
    except _Claimed:
        logger.info(
            "1.x session %s was moved or ended by another request",
            loggable_id(found.old_id)[:16],
        )
        return None
    # What the item held when claimed: a 1.x server still running may have changed it.
    claimed = _live(context, found.old_id, response.get("Attributes")) or found
    settings = context.settings
    old = claimed.record
    binding = users.binding_for(settings, old.data, None, user_agent)
    # The move is this session's use now: its idle expiry starts again, as a read's would.
    record = SessionRecord(
        old.created, context.clock(), old.idle_timeout, old.absolute_timeout, old.data, binding
    )
    new_id = context.ids.generate()
    store.create(storage_key(new_id), record)
    logger.info(
        "1.x session %s moved to this version's layout under a new id",
        loggable_id(found.old_id)[:16],
    )
    return new_id, record


def migrate(
    context: SessionContext, presented_id: str, user_agent: str | None
) -> tuple[str, SessionRecord] | None:
    """:func:`find`, then :func:`move`: the new id and record, or ``None``."""
    found = find(context, presented_id)
    return None if found is None else move(context, found, user_agent)


def _live(context: SessionContext, old_id: str, item: Mapping[str, Any] | None) -> V1Session | None:
    if not item:
        return None
    try:
        record = _record_of(item)
    except (KeyError, TypeError, ValueError) as exc:
        # A 1.x id whose key holds something else: this layout's records never match.
        logger.debug("Item under a presented id is not a 1.x session: %s", exc)
        return None
    settings = context.settings
    record = record.limited(settings.idle_timeout, settings.absolute_timeout)
    if context.clock() >= record.expires_at:
        logger.info("1.x session %s has expired; not moved", loggable_id(old_id)[:16])
        return None
    return V1Session(old_id, record)


def _record_of(item: Mapping[str, Any]) -> SessionRecord:
    """The 1.x item as this layout's record; values re-encoded as this version stores them.

    :raises KeyError, TypeError, ValueError: for an item that is not of the 1.x layout.
    """
    values = json.loads(item["data"]["S"])
    if not isinstance(values, dict):
        raise ValueError("1.x data is not a JSON object")
    data: dict[str, str] = {}
    for key, value in values.items():
        try:
            data[codec.check_key(key)] = codec.encode_value(key, value)
        except TypeError:
            logger.warning("Dropping a 1.x session key that cannot be stored: %r", key)
    return SessionRecord(
        created=_epoch(item["created"]["S"]),
        refreshed=_epoch(item["accessed"]["S"]),
        idle_timeout=int(item["idle_timeout"]["N"]),
        absolute_timeout=int(item["absolute_timeout"]["N"]),
        data=data,
    )


def _epoch(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"1.x timestamp without a time zone: {text!r}")
    return moment.timestamp()


class _Claimed(Exception):
    """The claim's condition failed: the item is gone or no longer of the 1.x layout."""


@contextmanager
def _translated(table_name: str, operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise _Claimed() from exc
        raise _unavailable(table_name, operation, exc) from exc
    except BotoCoreError as exc:
        raise _unavailable(table_name, operation, exc) from exc


def _unavailable(table_name: str, operation: str, exc: Exception) -> SessionBackendError:
    logger.error(
        "Session store unavailable: DynamoDB %s (1.x session lookup) on table %s failed: %s",
        operation,
        table_name,
        explain(exc, table_name, operation),
    )
    return SessionBackendError(operation, exc)
