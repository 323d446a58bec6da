"""A request that ends a session (``clear()``, ``regenerate()``) and then fails to save
what came after: the ended session stays ended, and the client is left with no live id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, session
from werkzeug.test import TestResponse

from .conftest import AppFactory, item_count, proxied_app, random_text
from .fault_proxy import FaultProxy
from .support import cookie_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: What the view stores after ending the session, by the failure it should cause.
AFTERWARDS: dict[str, Any] = {
    "unserializable": lambda: object(),
    # Random text: compression cannot bring it under the item limit.
    "too-large": lambda: random_text(500_000),
    "fine": lambda: "value",
}


def add_ending_route(app: Flask) -> None:
    @app.route("/end-then/<how>/<value>")
    def end_then(how: str, value: str) -> str:
        if how == "clear":
            session.clear()
        else:
            session.regenerate()  # type: ignore[attr-defined]
        session["after"] = AFTERWARDS[value]()
        return "done"


def assert_no_live_id(response: TestResponse, app: Flask, old_sid: str) -> None:
    """The response gives the client no id that loads anything, and the old one is dead."""
    new_sid = cookie_id(response)
    assert not new_sid, f"the failed response handed out an id: {new_sid!r}"
    assert new_sid == "", "the browser is told to drop the dead id"
    client = app.test_client()
    client.set_cookie("id", old_sid)
    assert client.get("/get").json == {}


@pytest.mark.parametrize("how", ["clear", "regenerate"])
@pytest.mark.parametrize("value", ["unserializable", "too-large"])
def test_programming_error_after_ending_leaves_the_session_ended(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str, how: str, value: str
) -> None:
    # A production app: the error becomes a 500 response rather than propagating.
    app, _ = make_app(TESTING=False)
    add_ending_route(app)
    client = app.test_client()
    client.get("/set?user=alice")
    old_sid = client.get_cookie("id").value

    response = client.get(f"/end-then/{how}/{value}")

    assert response.status_code == 500
    assert_no_live_id(response, app, old_sid)
    assert item_count(admin_client, table_name) == 0


@pytest.mark.parametrize("how", ["clear", "regenerate"])
def test_dynamodb_failing_after_ending_leaves_the_session_ended(
    make_app: AppFactory,
    proxy: FaultProxy,
    admin_client: DynamoDBClient,
    table_name: str,
    how: str,
) -> None:
    app = proxied_app(make_app, proxy)
    add_ending_route(app)
    client = app.test_client()
    client.get("/set?user=alice")
    old_sid = client.get_cookie("id").value

    proxy.server_error(None, "PutItem")
    response = client.get(f"/end-then/{how}/fine")

    assert response.status_code == 503
    assert_no_live_id(response, app, old_sid)
    proxy.clear()
    assert item_count(admin_client, table_name) == 0


def test_failed_change_without_ending_keeps_the_session(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str
) -> None:
    """The other side of failing closed: a plain change that cannot be saved leaves the
    session as it was, and the client keeps its id."""
    app, _ = make_app(TESTING=False)

    @app.route("/bad")
    def bad() -> str:
        session["after"] = object()
        return "done"

    client = app.test_client()
    client.get("/set?user=alice")

    assert client.get("/bad").status_code == 500
    assert client.get("/get").json == {"user": "alice"}
    assert item_count(admin_client, table_name) == 1
