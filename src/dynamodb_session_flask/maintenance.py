"""Table-wide work for operators: statistics, and deleting expired sessions where TTL does
not (an engine without TTL, a table whose TTL was never enabled, or TTL's days of lag).

Both read the whole table with a parallel, segmented Scan: each segment is scanned by its
own thread, one page (up to 1 MB) per call, eventually consistent (0.5 read unit per
4 KB scanned). Nothing here runs on a request's path; errors are botocore's own, for the
command line to report.

What a purge guarantees: it deletes a session only when, at the moment of the delete, the
item's own timing attributes (``created``, ``refreshed`` and the timeouts it was created
with) say that it expired at least ``margin`` seconds ago by the purge's clock. Each delete
is a DeleteItem conditional on those attributes being the ones the Scan saw, so a session
refreshed after the Scan is kept. Neither the command's clock nor its settings can end a
session the application still serves:

* a read applies the smaller of the record's timeouts and the application's settings, so
  no application sees a session live past the expiry of its own attributes, whatever
  settings it or the command runs with (shortened settings are left to reads and TTL);
* the margin covers clocks that disagree: the purge's may run up to ``margin`` seconds
  ahead of an application server's (or behind it) without deleting a session that server
  still considers live.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError

from .records import USER_ID, SessionRecord
from .settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

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

#: Seconds past its own expiry before a session is purged: more than clocks kept by NTP
#: ever disagree, and a session that has expired is never loaded anyway, so waiting costs
#: nothing but the storage of a few minutes.
DEFAULT_MARGIN = 300.0
#: Conditional deletes in flight at once, shared by the segments: one DeleteItem per
#: session would otherwise take a round trip each, where a BatchWriteItem took 25.
DELETE_WORKERS = 16
#: Every attribute the expiry is computed from: a delete conditional on all of them
#: deletes only the item whose expiry the purge checked.
_UNCHANGED = (
    "#created = :created AND #refreshed = :refreshed AND #idle = :idle AND #absolute = :absolute"
)


@dataclass
class PurgeResult:
    scanned: int = 0
    #: Sessions found expired past the margin (and, unless a dry run, deleted).
    expired: int = 0
    deleted: int = 0
    #: Sessions found expired but changed before their delete (refreshed by a request),
    #: and kept.
    kept: int = 0


def purgeable(item: Mapping[str, Any], now: float, margin: float) -> bool:
    """Whether a session item expired at least ``margin`` seconds before ``now`` by its own
    attributes alone, the longest any application may keep it live. Items that are not
    sessions (no timing attributes) are never purgeable."""
    record = _record(item)
    return record is not None and now - margin >= record.expires_at


def purge_expired(
    client: DynamoDBClient,
    table_name: str,
    clock: Callable[[], float],
    *,
    margin: float = DEFAULT_MARGIN,
    dry_run: bool = False,
    segments: int = DEFAULT_SEGMENTS,
    progress: Progress = _no_progress,
) -> PurgeResult:
    """Delete the sessions that expired at least ``margin`` seconds ago by their own
    attributes (see the module's docstring for what that guarantees): a parallel
    segmented Scan whose filter selects candidates on the server (the read still costs
    the whole table), then one conditional DeleteItem per session, each costing what an
    unconditional delete does (1 write unit per KB of the item, also when its condition
    fails), up to 16 at a time. Each candidate is re-checked against ``clock()`` before
    its delete. ``dry_run`` only counts.

    A delete whose answer was lost and that botocore retried finds its item gone and
    counts as kept: ``deleted`` may undercount, never overcount.
    """
    result = PurgeResult()
    lock = threading.Lock()
    deleters = ThreadPoolExecutor(max_workers=DELETE_WORKERS)

    def delete(item: Mapping[str, Any]) -> bool:
        return _delete_unchanged(client, table_name, item)

    def purge(segment: int) -> None:
        # ``expires`` is at most the rounded-up expiry of the item's own attributes
        # (reads may shorten it, never lengthen it), so this filter keeps every candidate.
        cutoff = math.ceil(clock() - margin)
        pages = _scan(
            client,
            table_name,
            segment,
            segments,
            progress,
            ProjectionExpression=", ".join(_TIMING),
            FilterExpression="#expires <= :cutoff",
            ExpressionAttributeNames=_TIMING,
            ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
        )
        scanned = found = deleted = kept = 0
        for page in pages:
            scanned += len(page)
            candidates = [item for item in page if purgeable(item, clock(), margin)]
            found += len(candidates)
            if dry_run:
                continue
            # One page at a time: memory stays at a page's items however large the table.
            outcomes = list(deleters.map(delete, candidates))
            deleted += sum(outcomes)
            kept += len(outcomes) - sum(outcomes)
        with lock:
            result.scanned += scanned
            result.expired += found
            result.deleted += deleted
            result.kept += kept

    with deleters:
        _in_parallel(segments, purge)
    return result


def _delete_unchanged(client: DynamoDBClient, table_name: str, item: Mapping[str, Any]) -> bool:
    """Delete the session ``item`` if its timing attributes are still the scanned ones;
    ``False`` when it changed (or is gone) meanwhile."""
    names = {key: value for key, value in _TIMING.items() if key not in ("#id", "#expires")}
    try:
        client.delete_item(
            TableName=table_name,
            Key={"id": item["id"]},
            ConditionExpression=_UNCHANGED,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":created": item["created"],
                ":refreshed": item["refreshed"],
                ":idle": item["idle_timeout"],
                ":absolute": item["absolute_timeout"],
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
