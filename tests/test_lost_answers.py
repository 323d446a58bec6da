"""A write DynamoDB applied whose answer never reached the app (a load balancer or NAT
cutting the line, a client read timeout): botocore sends it again, and the retry meets the
first attempt's own effect. Every conditional write must carry on as if the first answer
had arrived, or answer 503 leaving nothing live the client was not told of: never a 500,
never a 200 that silently drops the session.

The fault proxy forwards the chosen request to the engine, reads its answer, and resets
the app's connection instead of passing it on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dynamodb_session_flask.records import SessionRecord
from dynamodb_session_flask.store import SessionIdCollisionError, SessionStore

from .conftest import MAX_ATTEMPTS, AppFactory, item_count, proxied_app
from .engines import engine_client
from .fault_proxy import FaultProxy, is_conditional
from .test_users import add_user_routes

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@pytest.fixture
def app(make_app: AppFactory, proxy: FaultProxy) -> Flask:
    app = proxied_app(make_app, proxy)
    add_user_routes(app)
    return app


def sid_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("id")
    assert cookie is not None and cookie.value, "the client holds no session id"
    return cookie.value


def loads(app: Flask, sid: str) -> dict[str, Any]:
    other = app.test_client()
    other.set_cookie("id", sid)
    data: dict[str, Any] = other.get("/get").json
    return data


def assert_one_lost(proxy: FaultProxy, operation: str) -> None:
    """The fault really happened: the engine applied the write and its answer was lost."""
    assert [(lost.operation, lost.applied) for lost in proxy.lost_answers] == [(operation, True)]


def test_a_new_sessions_create_whose_answer_was_lost(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    client = app.test_client()
    proxy.lose_answer("PutItem")

    response = client.get("/set?cart=book")

    assert response.status_code == 200
    assert_one_lost(proxy, "PutItem")
    assert client.get("/get").json == {"cart": "book"}
    assert item_count(admin_client, table_name) == 1


@pytest.mark.parametrize(
    ("operation", "write"), [("PutItem", "the new record's create"), ("DeleteItem", "the old end")]
)
def test_a_login_whose_write_answer_was_lost(
    app: Flask,
    proxy: FaultProxy,
    admin_client: DynamoDBClient,
    table_name: str,
    operation: str,
    write: str,
) -> None:
    """At login (``regenerate()``), one of the rotation's two writes loses its answer: the
    user is logged in under the new id, and the old id is dead."""
    client = app.test_client()
    client.get("/set?cart=book")
    old = sid_of(client)
    proxy.lose_answer(operation, when=is_conditional)

    response = client.get("/login/alice")

    assert response.status_code == 200, write
    assert_one_lost(proxy, operation)
    assert sid_of(client) != old
    assert client.get("/get").json == {"cart": "book", "_user_id": "alice"}
    assert loads(app, old) == {}
    assert item_count(admin_client, table_name) == 1


def test_an_update_whose_answer_was_lost(app: Flask, proxy: FaultProxy) -> None:
    client = app.test_client()
    client.get("/set?cart=book")
    proxy.lose_answer("UpdateItem")

    assert client.get("/set?theme=dark").status_code == 200

    assert_one_lost(proxy, "UpdateItem")
    assert client.get("/get").json == {"cart": "book", "theme": "dark"}


def test_an_endings_delete_whose_answer_was_lost(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    here = app.test_client()
    there = app.test_client()
    here.get("/login/alice")
    there.get("/login/alice")
    proxy.lose_answer("DeleteItem", when=is_conditional)

    response = here.get("/end-others")

    assert response.status_code == 200
    assert_one_lost(proxy, "DeleteItem")
    assert response.json == {"ended": 1}
    assert there.get("/get").json == {}
    assert here.get("/get").json == {"_user_id": "alice"}
    assert item_count(admin_client, table_name) == 1


def test_ending_one_device_whose_answer_was_lost(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    here = app.test_client()
    there = app.test_client()
    here.get("/login/alice")
    there.get("/login/alice")
    (other,) = [d["handle"] for d in here.get("/devices").json if not d["current"]]
    proxy.lose_answer("DeleteItem", when=is_conditional)

    response = here.get(f"/end/{other}")

    assert response.status_code == 200
    assert_one_lost(proxy, "DeleteItem")
    assert response.json == {"ended": True}
    assert there.get("/get").json == {}
    assert item_count(admin_client, table_name) == 1


def test_a_lost_create_that_cannot_be_confirmed_is_a_503_and_leaves_nothing_live(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    """The create's answer is lost and DynamoDB then fails the read that would tell what
    happened: a 503, and the record the client never heard of is deleted."""
    client = app.test_client()
    proxy.lose_answer("PutItem")
    proxy.server_error(None, "GetItem")

    response = client.get("/set?cart=book")

    assert response.status_code == 503
    proxy.clear()
    assert item_count(admin_client, table_name) == 0


def test_a_retried_create_that_meets_another_session_is_not_taken_for_its_own(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str
) -> None:
    """The check a retried create makes is real: an item under the same key written at
    another moment is not this request's, and is never overwritten."""
    store = SessionStore(table_name, lambda: admin_client)
    theirs = SessionRecord(1000.0, 1000.0, 60, 600, {"who": '"them"'})
    ours = SessionRecord(2000.0, 2000.0, 60, 600, {"who": '"us"'})
    assert store.create("k" * 43, theirs)

    assert store._confirm_created("k" * 43, theirs) is True
    with pytest.raises(SessionIdCollisionError):
        store._confirm_created("k" * 43, ours)
    stored = store.get("k" * 43)
    assert stored is not None and stored.data == {"who": '"them"'}
    assert store._confirm_created("x" * 43, ours) is False


def test_user_sessions_shows_the_session_after_a_lost_login_answer(
    app: Flask, proxy: FaultProxy
) -> None:
    client = app.test_client()
    proxy.lose_answer("PutItem")
    client.get("/login/alice")

    devices = client.get("/devices").json

    assert [device["current"] for device in devices] == [True]


def test_no_500_when_every_write_of_a_login_loses_its_answer_once(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    """Both writes of a login lose their first answer."""
    client = app.test_client()
    client.get("/set?cart=book")
    proxy.lose_answer("PutItem")
    proxy.lose_answer("DeleteItem", when=is_conditional)

    response = client.get("/login/alice")

    assert response.status_code == 200
    assert client.get("/get").json == {"cart": "book", "_user_id": "alice"}
    assert item_count(admin_client, table_name) == 1


def store_through(proxy: FaultProxy, table_name: str) -> SessionStore:
    client = engine_client(
        proxy.url, retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    )
    return SessionStore(table_name, lambda: client)


@pytest.mark.parametrize("fault", ["throttle", "server_error"])
def test_a_write_retried_after_a_refusal_is_not_taken_for_applied(
    proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str, fault: str
) -> None:
    """Only a lost answer makes a retried write's failed condition ambiguous: after a
    throttle or an error answer the first attempt was refused, so a record that is gone
    was gone (ended by someone else), and a rotation must not carry on over it."""
    store = store_through(proxy, table_name)
    record = SessionRecord(time.time(), time.time(), 600, 3600, {"a": '"1"'})
    getattr(proxy, fault)(1, "DeleteItem")
    assert store.end_live("gone" * 11, record, time.time()) is None
    getattr(proxy, fault)(1, "DeleteItem")
    assert store.end_bound("gone" * 11, "alice").ended is False
    assert proxy.count("DeleteItem") == 4, "each delete was retried once"


def test_a_write_retried_after_a_lost_answer_is_taken_for_applied(
    proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    store = store_through(proxy, table_name)
    now = time.time()
    record = SessionRecord(now, now, 600, 3600, {"a": '"1"'})
    assert store.create("k" * 43, record)
    proxy.lose_answer("DeleteItem")

    assert store.end_live("k" * 43, record, now) == record
    assert_one_lost(proxy, "DeleteItem")
    assert store.get("k" * 43) is None


def test_an_endings_fence_whose_answer_was_lost(
    app: Flask, proxy: FaultProxy, admin_client: DynamoDBClient, table_name: str
) -> None:
    """``end_other_sessions()`` fences the caller's record first; that UpdateItem loses its
    answer: the retry meets the fence its first attempt set, the caller keeps its session
    and the other device is ended."""
    here = app.test_client()
    there = app.test_client()
    here.get("/login/alice")
    there.get("/login/alice")
    proxy.lose_answer(
        "UpdateItem", when=lambda body: "#fence" in body.get("ExpressionAttributeNames", {})
    )

    response = here.get("/end-others")

    assert response.status_code == 200
    assert_one_lost(proxy, "UpdateItem")
    assert response.json == {"ended": 1}
    assert here.get("/get").json == {"_user_id": "alice"}
    assert there.get("/get").json == {}
    assert item_count(admin_client, table_name) == 1
