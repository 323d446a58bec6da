"""One session's calls to DynamoDB, each next to its condition: read, create, update,
delete, and end while live (rotation's delete). The item layout is in :mod:`.records`,
what the calls share in :mod:`.calls`, and the per-user index's calls in
:mod:`.user_index`; no other module calls DynamoDB for a session.

IAM permissions used: ``dynamodb:GetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem`` on
the table.

Every write to an existing session is conditional on the record existing *and* not having
expired, so a request that finishes after a concurrent logout, or after the session's
expiry, cannot bring the session back.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from . import compression
from .calls import ConditionFailed, answer_lost
from .changes import delta
from .errors import SessionBackendError, SessionError
from .records import (
    FENCE,
    Binding,
    SessionRecord,
    attribute,
    binding_attributes,
    data_map,
    ensure_fits,
    expiry_epoch,
    number,
    rebind,
)
from .user_index import UserIndexCalls

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
else:
    DynamoDBClient = Any
    AttributeValueTypeDef = Any

logger = logging.getLogger("dynamodb_session_flask")

#: An update expression may be at most 4 KB; past this many changed keys the whole ``data``
#: map is written instead of a delta.
MAX_DELTA_KEYS = 100
#: Conditions, by purpose.
CREATE_ONLY = "attribute_not_exists(#id)"
#: The record exists and has expired neither by idle time nor by age. Comparisons with a
#: missing attribute are false, so this also refuses a record that is gone.
LIVE_ONLY = "attribute_exists(#id) AND #refreshed > :idle_cutoff AND #created > :absolute_cutoff"


class SessionIdCollisionError(SessionError):
    """A new session's key already exists in the table (a CSPRNG failure, or a bug)."""


class SessionStore(UserIndexCalls):
    """Reads and writes the session items of one table.

    :param table_name: the table.
    :param client: returns the shared low-level client (built lazily by the caller).
    :param consistent_read: strongly consistent GetItem (1 read unit per 4 KB) so a session
        written by one request is seen by the next; eventual reads cost half.
    :param compress_threshold: values whose text is longer than this many UTF-8 bytes are
        stored compressed when that saves at least a third (see :mod:`.compression`); 0
        stores every value as text. Either kind of stored value is read back.

    Every method for one session makes exactly one DynamoDB call (``update`` none when
    there is nothing to write) and raises :class:`SessionBackendError` when DynamoDB
    cannot answer. The per-user methods page or batch as their docstrings say.
    """

    def __init__(
        self,
        table_name: str,
        client: Callable[[], DynamoDBClient],
        *,
        consistent_read: bool = True,
        compress_threshold: int = compression.DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(table_name, client)
        self._consistent_read = consistent_read
        self._compress_threshold = compress_threshold

    def get(self, key: str) -> SessionRecord | None:
        """The stored record, or ``None`` when there is none (expiry is the caller's check).

        :raises UndecodableDataError: when a stored value cannot be read back (the caller
            decides what becomes of the session).
        """
        with self._translate_errors("GetItem"):
            response = self._client().get_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                ConsistentRead=self._consistent_read,
            )
        return self._record_from_item(response.get("Item"), undecodable_raises=True)

    def create(self, key: str, record: SessionRecord) -> bool:
        """Write a new session (with its user binding, if any); never overwrites an
        existing one.

        A create whose answer was lost (the connection reset after DynamoDB applied it) is
        retried by botocore and then fails its own condition. Only on that path, one
        strongly consistent GetItem tells whether the item now there is the one this
        call wrote (same creation and refresh times, to the millisecond, under a key
        nobody else knows): then the create succeeded.

        :returns: ``False`` when the record this call wrote was deleted again before its
            lost answer could be confirmed (ended by another request).
        :raises SessionTooLargeError: before writing, when the item would be too large
            with every value stored as text.
        :raises SessionIdCollisionError: when the key holds another session.
        :raises SessionBackendError: when DynamoDB fails, or when a retried create's
            outcome cannot be learnt; the key is then deleted if it can be, so no record
            the client was never told of is left live.
        """
        ensure_fits(key, record.data, record.binding)
        stored = {k: self._stored(v) for k, v in record.data.items()}
        try:
            with self._translate_errors("PutItem"):
                self._client().put_item(
                    TableName=self.table_name,
                    Item={
                        "id": {"S": key},
                        "data": data_map(stored),
                        "created": number(record.created),
                        "refreshed": number(record.refreshed),
                        "expires": expiry_epoch(record),
                        "idle_timeout": {"N": str(record.idle_timeout)},
                        "absolute_timeout": {"N": str(record.absolute_timeout)},
                        # A bound record enters the per-user index with this same write.
                        **binding_attributes(record.binding),
                    },
                    ConditionExpression=CREATE_ONLY,
                    ExpressionAttributeNames={"#id": "id"},
                )
        except ConditionFailed as exc:
            if not exc.retried:
                raise SessionIdCollisionError("a new session id is already in the table") from exc
            return self._confirm_created(key, record)
        except SessionBackendError as exc:
            if answer_lost(exc):
                # The last attempt may have been applied: leave nothing live behind.
                self.delete_quietly(key)
            raise
        return True

    def _confirm_created(self, key: str, record: SessionRecord) -> bool:
        """After a retried create failed its condition: whether the first attempt stored
        ``record`` (see :meth:`create`)."""
        try:
            item = self._read_consistently(key)
        except SessionBackendError:
            self.delete_quietly(key)
            raise
        if item is None:
            logger.info("A new session's record was ended before its write was confirmed")
            return False
        written = (item.get("created"), item.get("refreshed"))
        if written != (number(record.created), number(record.refreshed)):
            raise SessionIdCollisionError("a new session id is already in the table")
        logger.info("A retried session create found its first attempt applied")
        return True

    def _read_consistently(self, key: str) -> Mapping[str, Any] | None:
        """The raw item under ``key``, strongly consistent whatever the read setting: what
        a retried write needs to learn its first attempt's outcome."""
        with self._translate_errors("GetItem"):
            response = self._client().get_item(
                TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True
            )
        return response.get("Item")

    def delete_quietly(self, key: str) -> None:
        """Delete ``key`` if DynamoDB lets us, on a path that is already failing."""
        try:
            self.delete(key)
        except SessionBackendError:
            pass

    def update(
        self,
        key: str,
        before: Mapping[str, str],
        after: SessionRecord,
        *,
        binding_before: Binding | None,
    ) -> bool:
        """Write what changed between ``before`` and ``after.data`` as one conditional
        UpdateItem: ``SET`` the keys whose serialized value changed, ``REMOVE`` the keys that
        are gone, so concurrent requests changing different keys both survive; and move the
        idle expiry to ``after.refreshed``, the time of the write.

        When ``after.binding`` differs from ``binding_before`` the same UpdateItem sets or
        removes the binding's attributes; otherwise it names none of them, so the write
        leaves the per-user index untouched (DynamoDB writes an index entry only when a
        key or projected attribute of the index changes).

        :returns: ``False`` when the session is no longer live (logged out, ended
            elsewhere, or expired meanwhile); nothing was written then.
        :raises SessionTooLargeError: before writing, when the item would be too large
            with every value stored as text.
        """
        changed, removed = delta(before, after.data)
        names: dict[str, str] = {
            "#id": "id",
            "#refreshed": "refreshed",
            "#expires": "expires",
            "#created": "created",
        }
        values: dict[str, AttributeValueTypeDef] = {
            ":refreshed": number(after.refreshed),
            ":expires": expiry_epoch(after),
            **after.live_condition_values(after.refreshed),
        }
        assignments = ["#refreshed = :refreshed", "#expires = :expires"]
        removals: list[str] = []
        rebinding = after.binding != binding_before
        if changed or removed or rebinding:
            ensure_fits(key, after.data, after.binding)
        stored = {k: self._stored(v) for k, v in changed.items()}
        if rebinding:
            rebind(after.binding, names, values, assignments, removals)
        if changed or removed:
            names["#data"] = "data"
            if len(changed) + len(removed) > MAX_DELTA_KEYS:
                whole = {
                    k: stored[k] if k in stored else self._stored(v) for k, v in after.data.items()
                }
                values[":data"] = data_map(whole)
                assignments.append("#data = :data")
            else:
                for index, (name, value) in enumerate(stored.items()):
                    names[f"#s{index}"] = name
                    values[f":s{index}"] = attribute(value)
                    assignments.append(f"#data.#s{index} = :s{index}")
                for index, name in enumerate(removed):
                    names[f"#r{index}"] = name
                    removals.append(f"#data.#r{index}")
        expression = "SET " + ", ".join(assignments)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        try:
            with self._translate_errors("UpdateItem"):
                self._client().update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": key}},
                    UpdateExpression=expression,
                    ConditionExpression=LIVE_ONLY,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except ConditionFailed:
            return False
        return True

    def _stored(self, text: str) -> str | bytes:
        """What one value is written as: its text compressed when that pays, else the text."""
        packed = compression.compress(text, self._compress_threshold)
        return text if packed is None else packed

    def delete(self, key: str) -> None:
        """Remove a session; removing one that is already gone is not an error."""
        with self._translate_errors("DeleteItem"):
            self._client().delete_item(TableName=self.table_name, Key={"id": {"S": key}})

    def fence(self, key: str, loaded: SessionRecord, now: float) -> str | None:
        """Fence a live session's record: one conditional UpdateItem that sets a new random
        ``fence``, so that a move of the record to a new id (:meth:`end_live`) by any
        request that read it before is refused. "End my other sessions" fences the asking
        session's own record, so a stolen copy of its id being moved at that moment cannot
        escape under its handle.

        :returns: the new fence, or ``None`` when the record is no longer live (moved,
            ended or expired): nothing was written then.
        """
        token = secrets.token_urlsafe(12)
        try:
            with self._translate_errors("UpdateItem"):
                self._client().update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": key}},
                    UpdateExpression="SET #fence = :new_fence",
                    ConditionExpression=LIVE_ONLY,
                    ExpressionAttributeNames={
                        "#id": "id",
                        "#refreshed": "refreshed",
                        "#created": "created",
                        "#fence": FENCE,
                    },
                    ExpressionAttributeValues={
                        ":new_fence": {"S": token},
                        **loaded.live_condition_values(now),
                    },
                )
        except ConditionFailed as exc:
            if not exc.retried:
                return None
            # The first attempt may have set it: the record says.
            record = self._record_from_item(self._read_consistently(key), with_data=False)
            return token if record is not None and record.fence == token else None
        return token

    def end_live(self, key: str, loaded: SessionRecord, now: float) -> SessionRecord | None:
        """Delete a session only if it is still live at ``now``, and return what it held
        when it was deleted: one conditional DeleteItem with ``ReturnValues=ALL_OLD``.

        Rotation ends the old record with this *before* creating the new one, so a logout
        that won the race is never undone, and a failure after this call leaves no live
        record behind. It needs no transaction, which not every engine has.

        A delete whose answer was lost is retried by botocore and then fails its own
        condition (the record is gone): the first attempt is taken to have deleted it, and
        ``loaded``, what this request already holds, is returned in place of the lost
        answer.

        A move is refused, too, when the record was fenced (:meth:`fence`) after this
        request read it.

        :param loaded: the record as this request read it; its timeouts decide liveness.
        :returns: ``None`` when the session was already gone or expired (nothing deleted).
        """
        values = loaded.live_condition_values(now)
        if loaded.fence is None:
            fence_condition = "attribute_not_exists(#fence)"
        else:
            # Fenced since by an ending made from a session holding this id: only a
            # request that read the record after that may move it.
            fence_condition = "#fence = :fence"
            values[":fence"] = {"S": loaded.fence}
        try:
            with self._translate_errors("DeleteItem"):
                response = self._client().delete_item(
                    TableName=self.table_name,
                    Key={"id": {"S": key}},
                    ConditionExpression=LIVE_ONLY + " AND " + fence_condition,
                    ExpressionAttributeNames={
                        "#id": "id",
                        "#refreshed": "refreshed",
                        "#created": "created",
                        "#fence": FENCE,
                    },
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD",
                )
        except ConditionFailed as exc:
            if exc.retried:
                logger.info("A retried end of a rotated session found its first attempt applied")
                return loaded
            return None
        return self._record_from_item(response.get("Attributes"))
