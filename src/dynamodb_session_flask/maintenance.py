"""Table-wide work for operators: statistics, and deleting expired sessions where TTL does
not (an engine without TTL, a table whose TTL was never enabled, or TTL's days of lag).

Both read the whole table with a parallel, segmented Scan: each segment is scanned by its
own thread, one page (up to 1 MB) per call, eventually consistent (0.5 read unit per
4 KB scanned). Nothing here runs on a request's path; errors are botocore's own, for the
command line to report.

What is safe under concurrency: an expired record can never become live again, because
every write to an existing session is conditional on it being live (``store.LIVE_ONLY``).
So a record found expired, and found expired again when re-checked just before its batch
is written, can be deleted by BatchWriteItem, which takes no condition, without ever
ending a live session. (Clocks must agree: an application server whose clock runs behind
could still refresh a session the purge's clock has just seen expire.)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import SessionBackendError
from .records import USER_ID, SessionRecord
from .settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

#: BatchWriteItem takes at most this many requests per call.
BATCH_WRITE_LIMIT = 25
#: Attempts at the requests a BatchWriteItem left unprocessed (throttling), with backoff.
BATCH_ATTEMPTS = 8
DEFAULT_SEGMENTS = 4

#: Called with the number of items each scanned page held, from the scanning threads.
Progress = Callable[[int], None]

_TIMING = {
    "#id": "id",
    "#created": "created",
    "#refreshed": "refreshed",
    "#idle": "idle_timeout",
    "#absolute": "absolute_timeout",
    "#expires": "expires",
}


def _no_progress(_: int) -> None:
    pass


def _scan(
    client: DynamoDBClient,
    table_name: str,
    segment: int,
    segments: int,
    progress: Progress,
    **arguments: Any,
) -> Iterator[list[dict[str, Any]]]:
    """The pages of one segment of the table."""
    start: Mapping[str, Any] | None = None
    while True:
        if start is not None:
            arguments["ExclusiveStartKey"] = start
        response = client.scan(
            TableName=table_name, Segment=segment, TotalSegments=segments, **arguments
        )
        progress(response.get("ScannedCount", 0))
        yield response.get("Items", [])
        start = response.get("LastEvaluatedKey")
        if not start:
            return


def _in_parallel(segments: int, work: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=segments) as pool:
        return list(pool.map(work, range(segments)))


def _record(item: Mapping[str, Any]) -> SessionRecord | None:
    try:
        return SessionRecord(
            created=float(item["created"]["N"]),
            refreshed=float(item["refreshed"]["N"]),
            idle_timeout=int(item["idle_timeout"]["N"]),
            absolute_timeout=int(item["absolute_timeout"]["N"]),
            data={},
        )
    except (KeyError, TypeError, ValueError):
        return None


def expired(item: Mapping[str, Any], settings: Settings, now: float) -> bool:
    """Whether a session item has expired at ``now`` by the rule reads apply: its own
    timeouts, shortened by the current settings. Items that are not sessions (no timing
    attributes) are never called expired."""
    record = _record(item)
    if record is None:
        return False
    limited = record.limited(settings.idle_timeout, settings.absolute_timeout)
    return now >= limited.expires_at


# -- stats ----------------------------------------------------------------------------------


def attribute_size(value: Mapping[str, Any]) -> int:
    """An attribute value's size as DynamoDB bills it (close enough for percentiles):
    UTF-8 bytes of strings, raw bytes of binaries, about one byte per two digits of a
    number, 3 bytes plus each entry's name and value for maps and lists."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "B":
        return len(content)
    if kind == "N":
        return math.ceil(len(content.lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in content.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in content)
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(math.ceil(len(n) / 2) + 1 for n in content)
    if kind == "BS":
        return sum(len(b) for b in content)
    return 0


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class TableStats:
    """What ``stats`` found; sizes in bytes as DynamoDB counts them."""

    items: int = 0
    live: int = 0
    #: Expired sessions still in the table, waiting for TTL (or a purge).
    expired: int = 0
    #: Live sessions bound to a user (listed by the per-user index).
    bound: int = 0
    #: Items that are not well-formed sessions (never loaded).
    other: int = 0
    sizes: list[int] = field(default_factory=list)

    def size_percentile(self, quantile: float) -> int:
        """Nearest-rank percentile of the item sizes; 0 for an empty table."""
        if not self.sizes:
            return 0
        ordered = sorted(self.sizes)
        rank = min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))
        return ordered[rank]

    def add(self, other: TableStats) -> None:
        self.items += other.items
        self.live += other.live
        self.expired += other.expired
        self.bound += other.bound
        self.other += other.other
        self.sizes += other.sizes


def table_stats(
    client: DynamoDBClient,
    table_name: str,
    settings: Settings,
    now: float,
    *,
    segments: int = DEFAULT_SEGMENTS,
    progress: Progress = _no_progress,
) -> TableStats:
    """Count the table's items by state and measure their sizes: reads every item once
    (a full Scan, 0.5 read unit per 4 KB)."""

    def count(segment: int) -> TableStats:
        stats = TableStats()
        for page in _scan(client, table_name, segment, segments, progress):
            for item in page:
                stats.items += 1
                stats.sizes.append(item_size(item))
                record = _record(item)
                if record is None:
                    stats.other += 1
                elif expired(item, settings, now):
                    stats.expired += 1
                else:
                    stats.live += 1
                    stats.bound += USER_ID in item
        return stats

    total = TableStats()
    for stats in _in_parallel(segments, count):
        total.add(stats)
    return total


# -- purge ----------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    scanned: int = 0
    #: Expired sessions found (and, unless a dry run, deleted).
    expired: int = 0
    deleted: int = 0


def purge_expired(
    client: DynamoDBClient,
    table_name: str,
    settings: Settings,
    clock: Callable[[], float],
    *,
    dry_run: bool = False,
    segments: int = DEFAULT_SEGMENTS,
    progress: Progress = _no_progress,
) -> PurgeResult:
    """Delete the sessions that have expired: a parallel segmented Scan whose filter
    selects expired items (the read still costs the whole table), then one BatchWriteItem
    per 25 of them. The filter is only a coarse pre-selection on the server: each item it
    returns is re-checked against ``clock()`` with the exact rule reads apply before it
    joins a batch. ``dry_run`` only counts.

    :raises SessionBackendError: when DynamoDB keeps throttling the deletes.
    """
    result = PurgeResult()
    lock = threading.Lock()

    def purge(segment: int) -> None:
        # The filter mirrors the read rule with the current settings' timeouts; the
        # rounding up of ``expires`` only makes it keep an item a moment longer.
        now = clock()
        values = {
            ":now": {"N": str(int(now))},
            ":idle_cutoff": {"N": repr(now - settings.idle_timeout)},
            ":absolute_cutoff": {"N": repr(now - settings.absolute_timeout)},
        }
        pages = _scan(
            client,
            table_name,
            segment,
            segments,
            progress,
            ProjectionExpression=", ".join(_TIMING),
            FilterExpression=(
                "#expires <= :now OR #refreshed <= :idle_cutoff OR #created <= :absolute_cutoff"
            ),
            ExpressionAttributeNames=_TIMING,
            ExpressionAttributeValues=values,
        )
        scanned = found = deleted = 0
        pending: list[str] = []
        for page in pages:
            scanned += len(page)
            for item in page:
                if expired(item, settings, clock()):
                    found += 1
                    pending.append(item["id"]["S"])
            while len(pending) >= BATCH_WRITE_LIMIT:
                deleted += _delete(client, table_name, pending[:BATCH_WRITE_LIMIT], dry_run)
                del pending[:BATCH_WRITE_LIMIT]
        if pending:
            deleted += _delete(client, table_name, pending, dry_run)
        with lock:
            result.scanned += scanned
            result.expired += found
            result.deleted += deleted

    _in_parallel(segments, purge)
    return result


def _delete(client: DynamoDBClient, table_name: str, keys: Sequence[str], dry_run: bool) -> int:
    """Delete ``keys`` with one BatchWriteItem, retrying what DynamoDB left unprocessed."""
    if dry_run:
        return 0
    requests: dict[str, Any] = {
        table_name: [{"DeleteRequest": {"Key": {"id": {"S": key}}}} for key in keys]
    }
    for attempt in range(BATCH_ATTEMPTS):
        response = client.batch_write_item(RequestItems=requests)
        requests = dict(response.get("UnprocessedItems") or {})
        if not requests:
            return len(keys)
        time.sleep(min(2.0, 0.05 * 2**attempt))
    left = len(requests.get(table_name, []))
    raise SessionBackendError(
        "BatchWriteItem",
        RuntimeError(
            f"{left} deletes left unprocessed after {BATCH_ATTEMPTS} attempts (the table "
            f"is throttling); run the purge again later"
        ),
    )
