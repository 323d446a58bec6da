"""What every DynamoDB call of this package shares: one client for one table, DynamoDB's
errors turned into this package's (a 503 with one ERROR line, or a condition that failed,
saying whether botocore had retried the call), and an item read back as a record.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)

from .diagnose import explain
from .errors import SessionBackendError, UndecodableDataError
from .records import SessionRecord, record_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")


class TableCalls:
    """The calls to one table, through a shared low-level client.

    :param table_name: the table.
    :param client: returns the shared low-level client (built lazily by the caller).
    """

    def __init__(self, table_name: str, client: Callable[[], DynamoDBClient]) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        """The shared client, for table-wide operations (the command line)."""
        return self._client()

    def prepare(self) -> None:
        """Build the shared client now, at start-up, rather than in the first call."""
        self._client()

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
        _attempts.answer_lost = False
        try:
            # Building the client can fail too (no region): inside, so it is a 503.
            _watch_for_lost_answers(self._client())
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                # botocore retries a write whose answer was lost (a reset connection, a
                # read timeout); the retry then meets the first attempt's own effect, and
                # the caller must tell the two apart. A retry after a throttle or an
                # error answer is not that: the first attempt was refused.
                retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                retried = bool(retries) and bool(getattr(_attempts, "answer_lost", False))
                raise ConditionFailed(retried=retried) from exc
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


#: Per thread: whether an attempt of the call being made ended without an answer.
_attempts = threading.local()
_watched: weakref.WeakSet[Any] = weakref.WeakSet()
_watched_lock = threading.Lock()


def _note_attempt(caught_exception: Exception | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` event, after every attempt: remember an attempt whose
    request was sent and whose answer never came (it may have been applied)."""
    if isinstance(caught_exception, (ReadTimeoutError, ConnectionClosedError)):
        _attempts.answer_lost = True


def _watch_for_lost_answers(client: DynamoDBClient) -> None:
    """Hook :func:`_note_attempt` into ``client``'s events, once per client."""
    if client in _watched:
        return
    with _watched_lock:
        if client not in _watched:
            client.meta.events.register(
                "needs-retry.dynamodb", _note_attempt, unique_id="dynamodb-session-flask"
            )
            _watched.add(client)


def answer_lost(exc: SessionBackendError) -> bool:
    """Whether the failed call may have been applied by DynamoDB: the request was sent and
    its answer never arrived."""
    return isinstance(exc.original_error, (ReadTimeoutError, ConnectionClosedError))


class ConditionFailed(Exception):
    """A write's condition did not hold; callers decide what that means. ``retried`` says
    botocore sent the write more than once, so the condition may have failed on what the
    first attempt did."""

    def __init__(self, *, retried: bool = False) -> None:
        super().__init__()
        self.retried = retried
