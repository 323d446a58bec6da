"""The per-user index's calls: which sessions the index lists for a user (Query), their
records (BatchGetItem, strongly consistent), and ending one while it is still bound to
that user (a conditional DeleteItem). What they mean for a user's sessions is
:mod:`.users`'.

IAM permissions used: ``dynamodb:Query`` on the index, ``BatchGetItem`` and ``DeleteItem``
(and, on a failed Query only, ``DescribeTable``) on the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .calls import ConditionFailed, TableCalls
from .errors import SessionError, UserIndexMissingError
from .records import HANDLE, USER_AGENT, USER_ID, SessionRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
else:
    AttributeValueTypeDef = Any

#: BatchGetItem reads at most this many keys per call.
BATCH_GET_LIMIT = 100
#: Attempts at the keys a BatchGetItem left unprocessed (throttling), with backoff.
BATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class IndexEntry:
    """One session as the per-user index lists it."""

    key: str
    handle: str


@dataclass(frozen=True)
class Ending:
    """What a conditional delete of one session did."""

    #: Whether the record was deleted by this call (or by its first attempt, whose answer
    #: was lost and which botocore then retried).
    ended: bool
    #: What the record held when it was deleted; ``None`` when nothing was deleted, or
    #: when the answer that carried it was lost.
    held: SessionRecord | None = None


class UserIndexCalls(TableCalls):
    """The calls on a table's per-user index, and on the items it lists."""

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
        except ConditionFailed as exc:
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
