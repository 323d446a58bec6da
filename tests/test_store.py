"""The store's write conditions, against the engine itself: the situations no sequence of
requests can arrange on demand (an id collision, an index entry that trails a rebinding),
so each condition is shown to hold where it matters."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from dynamodb_session_flask import codec
from dynamodb_session_flask.records import Binding, SessionRecord
from dynamodb_session_flask.store import SessionIdCollisionError, SessionStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY = "storage-key-of-a-session"


@pytest.fixture
def store(admin_client: DynamoDBClient, table_name: str) -> SessionStore:
    return SessionStore(table_name, lambda: admin_client)


def record(user: str, binding: Binding | None = None) -> SessionRecord:
    now = time.time()
    return SessionRecord(now, now, 600, 3600, {"user": codec.encode_value("user", user)}, binding)


def test_a_new_session_never_overwrites_a_stored_one(store: SessionStore) -> None:
    store.create(KEY, record("alice"))

    with pytest.raises(SessionIdCollisionError):
        store.create(KEY, record("mallory"))

    stored = store.get(KEY)
    assert stored is not None and stored.data == record("alice").data


def test_ending_by_user_spares_a_session_rebound_to_another_user(store: SessionStore) -> None:
    """The index may still list a session under its former user a moment after it was
    rebound: ending that user's sessions from the stale entry must leave it alone."""
    store.create(KEY, record("bob", Binding("bob", "b" * 22)))

    assert not store.end_bound(KEY, "alice").ended
    assert not store.end_bound(KEY, "bob", handle="a" * 22).ended

    stored = store.get(KEY)
    assert stored is not None and stored.binding == Binding("bob", "b" * 22)
    ended = store.end_bound(KEY, "bob", handle="b" * 22)
    assert ended.ended and ended.held is not None
    assert ended.held.binding == Binding("bob", "b" * 22)
    assert store.get(KEY) is None
