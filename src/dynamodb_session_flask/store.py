"""The only module that reads and writes session items in DynamoDB (their layout is in
:mod:`.records`).

IAM permissions used: ``dynamodb:GetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem`` on
the table, plus ``Query`` on the per-user index and ``BatchGetItem`` for per-user sessions.
Every write to an existing session is conditional on the record existing *and* not having
expired, so a request that finishes after a concurrent logout, or after the session's
expiry, cannot bring the session back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)

from . import compression
from .changes import delta
from .diagnose import explain
from .errors import (
    SessionBackendError,
    SessionError,
    UndecodableDataError,
    UserIndexMissingError,
)
from .records import (
    HANDLE,
    USER_AGENT,
    USER_ID,
    Binding,
    SessionRecord,
    attribute,
    binding_attributes,
    data_map,
    ensure_fits,
    expiry_epoch,
    number,
    rebind,
    record_from_item,
)

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
#: BatchGetItem reads at most this many keys per call.
BATCH_GET_LIMIT = 100
#: Attempts at the keys a BatchGetItem left unprocessed (throttling), with backoff.
BATCH_ATTEMPTS = 5

#: Conditions, by purpose.
CREATE_ONLY = "attribute_not_exists(#id)"
#: The record exists and has expired neither by idle time nor by age. Comparisons with a
#: missing attribute are false, so this also refuses a record that is gone.
LIVE_ONLY = "attribute_exists(#id) AND #refreshed > :idle_cutoff AND #created > :absolute_cutoff"


@dataclass(frozen=True)
class IndexEntry:
    """One session as the per-user index lists it."""

    key: str
    handle: str


class SessionIdCollisionError(SessionError):
    """A new session's key already exists in the table (a CSPRNG failure, or a bug)."""


@dataclass(frozen=True)
class Ending:
    """What a conditional delete of one session did."""

    #: Whether the record was deleted by this call (or by its first attempt, whose answer
    #: was lost and which botocore then retried).
    ended: bool
    #: What the record held when it was deleted; ``None`` when nothing was deleted, or
    #: when the answer that carried it was lost.
    held: SessionRecord | None = None


class SessionStore:
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
        self.table_name = table_name
        self._client = client
        self._consistent_read = consistent_read
        self._compress_threshold = compress_threshold

    @property
    def client(self) -> DynamoDBClient:
        """The shared client, for table-wide operations (the command line)."""
        return self._client()

    def prepare(self) -> None:
        """Build the shared client now, at start-up, rather than in the first call."""
        self._client()

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
        except _ConditionFailed as exc:
            if not exc.retried:
                raise SessionIdCollisionError("a new session id is already in the table") from exc
            return self._confirm_created(key, record)
        except SessionBackendError as exc:
            if _answer_lost(exc):
                # The last attempt may have been applied: leave nothing live behind.
                self._delete_quietly(key)
            raise
        return True

    def _confirm_created(self, key: str, record: SessionRecord) -> bool:
        """After a retried create failed its condition: whether the first attempt stored
        ``record`` (see :meth:`create`)."""
        try:
            with self._translate_errors("GetItem"):
                response = self._client().get_item(
                    TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True
                )
        except SessionBackendError:
            self._delete_quietly(key)
            raise
        item = response.get("Item")
        if item is None:
            logger.info("A new session's record was ended before its write was confirmed")
            return False
        written = (item.get("created"), item.get("refreshed"))
        if written != (number(record.created), number(record.refreshed)):
            raise SessionIdCollisionError("a new session id is already in the table")
        logger.info("A retried session create found its first attempt applied")
        return True

    def _delete_quietly(self, key: str) -> None:
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
        except _ConditionFailed:
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

        :param loaded: the record as this request read it; its timeouts decide liveness.
        :returns: ``None`` when the session was already gone or expired (nothing deleted).
        """
        try:
            with self._translate_errors("DeleteItem"):
                response = self._client().delete_item(
                    TableName=self.table_name,
                    Key={"id": {"S": key}},
                    ConditionExpression=LIVE_ONLY,
                    ExpressionAttributeNames={
                        "#id": "id",
                        "#refreshed": "refreshed",
                        "#created": "created",
                    },
                    ExpressionAttributeValues=loaded.live_condition_values(now),
                    ReturnValues="ALL_OLD",
                )
        except _ConditionFailed as exc:
            if exc.retried:
                logger.info("A retried end of a rotated session found its first attempt applied")
                return loaded
            return None
        return self._record_from_item(response.get("Attributes"))

    # -- per-user: the index on the binding ---------------------------------------------

    def user_index_entries(
        self, index_name: str, user_id: str, handle: str | None = None
    ) -> list[IndexEntry]:
        """The sessions the per-user index lists for ``user_id`` (only the one named
        ``handle``, when given): one Query per 1 MB page of index entries (an entry is
        about 100 bytes; 0.5 read unit per 4 KB read).

        Index reads are eventually consistent (DynamoDB offers nothing else on a global
        secondary index): a session bound a moment ago may be missing, and one ended a
        moment ago may still be listed. Callers therefore re-read the items themselves
        (:meth:`get_many`) or make their writes conditional on the item.

        :raises UserIndexMissingError: when the table has no such index, or it is still
            being built.
        """
        condition, names, values = _owned_by(user_id, handle)
        entries: list[IndexEntry] = []
        start: dict[str, Any] | None = None
        while True:
            arguments: dict[str, Any] = {}
            if start is not None:
                arguments["ExclusiveStartKey"] = start
            try:
                response = self._client().query(
                    TableName=self.table_name,
                    IndexName=index_name,
                    KeyConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    **arguments,
                )
            except ClientError as exc:
                raise self._index_failure(index_name, exc) from exc
            except BotoCoreError as exc:
                raise self._unavailable("Query", exc) from exc
            entries.extend(
                IndexEntry(item["id"]["S"], item[HANDLE]["S"])
                for item in response.get("Items", [])
                if "id" in item and HANDLE in item
            )
            start = response.get("LastEvaluatedKey")
            if not start:
                return entries

    def get_many(self, keys: Sequence[str]) -> dict[str, SessionRecord]:
        """The stored records of ``keys``, without their data (keys not in the table are
        left out): one strongly consistent BatchGetItem per 100 keys, plus a retry, with
        backoff, of any keys DynamoDB left unprocessed. Each item costs 1 read unit per
        4 KB of its full size (a projection does not make a read cheaper).

        Strongly consistent on purpose: a session ended a moment ago is never returned,
        whatever the index still lists.
        """
        names = {
            "#id": "id",
            "#created": "created",
            "#refreshed": "refreshed",
            "#idle": "idle_timeout",
            "#absolute": "absolute_timeout",
            "#user_id": USER_ID,
            "#handle": HANDLE,
            "#user_agent": USER_AGENT,
        }
        found: dict[str, SessionRecord] = {}
        unique = list(dict.fromkeys(keys))
        # (No keys, no call: BatchGetItem rejects an empty request.)
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"id": {"S": key}} for key in unique[start : start + BATCH_GET_LIMIT]],
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_ATTEMPTS):
                with self._translate_errors("BatchGetItem"):
                    response = self._client().batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    record = self._record_from_item(item, with_data=False)
                    if record is not None:
                        found[item["id"]["S"]] = record
                pending = dict(response.get("UnprocessedKeys") or {})
                if not pending:
                    break
                # Throttled: back off as botocore's own retries would.
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise self._unavailable(
                    "BatchGetItem",
                    RuntimeError(f"keys still unprocessed after {BATCH_ATTEMPTS} attempts"),
                )
        return found

    def end_bound(self, key: str, user_id: str, handle: str | None = None) -> Ending:
        """Delete a session only if it is still bound to ``user_id`` (and named
        ``handle``, when given): one conditional DeleteItem that returns what it held.

        The condition makes a stale index entry harmless: a session that was rebound to
        another user or unbound meanwhile is left alone. Every later write to the deleted
        record, by a request of that session already in flight, is conditional on the
        record existing, so the session cannot come back. A delete whose answer was lost
        and which botocore retried finds the record gone: its first attempt ended it.
        """
        condition, names, values = _owned_by(user_id, handle)
        try:
            with self._translate_errors("DeleteItem"):
                response = self._client().delete_item(
                    TableName=self.table_name,
                    Key={"id": {"S": key}},
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD",
                )
        except _ConditionFailed as exc:
            return Ending(ended=exc.retried)
        return Ending(ended=True, held=self._record_from_item(response.get("Attributes")))

    def _index_failure(self, index_name: str, exc: ClientError) -> SessionError:
        """What a failed index Query means. Engines word a missing index differently
        (DynamoDB and dynalite: ValidationException, moto: ResourceNotFoundException), so
        for those codes one DescribeTable, on this error path only, tells a missing or
        still-building index from a missing table or anything else."""
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ValidationException", "ResourceNotFoundException"):
            try:
                table = self._client().describe_table(TableName=self.table_name)["Table"]
            except (ClientError, BotoCoreError):
                return self._unavailable("Query", exc)
            indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
            index = indexes.get(index_name)
            if index is None:
                return UserIndexMissingError(index_name, self.table_name)
            status = index.get("IndexStatus", "ACTIVE")
            if status != "ACTIVE" or index.get("Backfilling"):
                return UserIndexMissingError(index_name, self.table_name, status=status)
        return self._unavailable("Query", exc)

    def _record_from_item(
        self,
        item: Mapping[str, Any] | None,
        *,
        with_data: bool = True,
        undecodable_raises: bool = False,
    ) -> SessionRecord | None:
        if not item:
            return None
        try:
            return record_from_item(item, with_data=with_data)
        except UndecodableDataError:
            if undecodable_raises:
                raise
        except (KeyError, TypeError, ValueError):
            pass
        logger.warning("Ignoring a malformed session item in table %s", self.table_name)
        return None

    @contextmanager
    def _translate_errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                # botocore retries a write whose answer was lost (a reset connection, a
                # read timeout) and says so here; the retry then meets the first
                # attempt's own effect, and the caller must tell the two apart.
                retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                raise _ConditionFailed(retried=bool(retries)) from exc
            raise self._unavailable(operation, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(operation, exc) from exc

    def _unavailable(self, operation: str, exc: Exception) -> SessionBackendError:
        logger.error(
            "Session store unavailable: DynamoDB %s on table %s failed: %s",
            operation,
            self.table_name,
            explain(exc, self.table_name, operation),
        )
        return SessionBackendError(operation, exc)


def _answer_lost(exc: SessionBackendError) -> bool:
    """Whether the failed call may have been applied by DynamoDB: the request was sent and
    its answer never arrived."""
    return isinstance(exc.original_error, (ReadTimeoutError, ConnectionClosedError))


def _owned_by(
    user_id: str, handle: str | None
) -> tuple[str, dict[str, str], dict[str, AttributeValueTypeDef]]:
    """An expression on the binding: bound to ``user_id`` (and named ``handle``, when
    given), with its attribute names and values. It serves as the index Query's key
    condition and as the condition of a delete."""
    names = {"#user_id": USER_ID}
    values: dict[str, AttributeValueTypeDef] = {":user_id": {"S": user_id}}
    condition = "#user_id = :user_id"
    if handle is not None:
        names["#handle"] = HANDLE
        values[":handle"] = {"S": handle}
        condition += " AND #handle = :handle"
    return condition, names, values


class _ConditionFailed(Exception):
    """A write's condition did not hold; callers decide what that means. ``retried`` says
    botocore sent the write more than once, so the condition may have failed on what the
    first attempt did."""

    def __init__(self, *, retried: bool = False) -> None:
        super().__init__()
        self.retried = retried
