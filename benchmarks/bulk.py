"""Filling a session table with many live sessions, to show that a request's cost does not
depend on how many other sessions the table holds."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flask.json.tag import TaggedJSONSerializer

from dynamodb_session_flask import compression

from .payloads import profile_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestUnionTypeDef
else:
    DynamoDBClient = Any
    AttributeValueTypeDef = Any
    WriteRequestUnionTypeDef = Any

#: DynamoDB's limit of items per BatchWriteItem call.
BATCH_SIZE = 25
_serializer = TaggedJSONSerializer()


def _session_item(profile: AttributeValueTypeDef, now: int) -> dict[str, Any]:
    # The layout the package stores (see its store module): a hashed id, one tagged-JSON
    # value per session key (compressed when large), epoch-second timestamps. All live for
    # the next hours.
    key = base64.urlsafe_b64encode(hashlib.sha256(os.urandom(32)).digest()).decode()
    return {
        "id": {"S": key.rstrip("=")},
        "data": {
            "M": {
                "user": {"S": _serializer.dumps(key[:12])},
                "profile": profile,
                "cart": {"S": "[]"},
            }
        },
        "created": {"N": str(now)},
        "refreshed": {"N": str(now)},
        "expires": {"N": str(now + 7200)},
        "idle_timeout": {"N": "7200"},
        "absolute_timeout": {"N": "43200"},
    }


def _write_batches(
    client: DynamoDBClient, table_name: str, batches: int, profile: AttributeValueTypeDef
) -> int:
    written = 0
    now = int(time.time())
    for _ in range(batches):
        pending: Sequence[WriteRequestUnionTypeDef] = [
            {"PutRequest": {"Item": _session_item(profile, now)}} for _ in range(BATCH_SIZE)
        ]
        for attempt in range(10):
            answer = client.batch_write_item(RequestItems={table_name: pending})
            pending = answer.get("UnprocessedItems", {}).get(table_name, [])
            if not pending:
                break
            time.sleep(0.05 * (attempt + 1))
        if pending:
            raise RuntimeError(f"{len(pending)} items still unprocessed after retries")
        written += BATCH_SIZE
    return written


def load_sessions(
    client: DynamoDBClient, table_name: str, count: int, size: int, threads: int = 8
) -> int:
    """Write ``count`` (rounded up to a whole batch) sessions of about ``size`` bytes with
    parallel BatchWriteItem calls; returns how many were written. ``client`` must have a
    connection pool of at least ``threads`` (boto3 clients are safe to share)."""
    text = _serializer.dumps(profile_template(size))
    packed = compression.compress(text)
    profile: AttributeValueTypeDef = {"S": text} if packed is None else {"B": packed}
    batches = -(-count // BATCH_SIZE)
    shares = [batches // threads + (1 if i < batches % threads else 0) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        done = pool.map(lambda share: _write_batches(client, table_name, share, profile), shares)
        return sum(done)
