"""What binding a session to its user costs: nothing on ordinary requests. The per-user
index projects keys only (user_id, handle), so a write writes the index only when it
names one of them; the tests look at every request the app's client sends."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .conftest import AppFactory, CallCounter
from .test_users import add_user_routes, logged_in

INDEX_ATTRIBUTES = {"user_id", "handle"}


class SentRequests(list[tuple[str, dict[str, Any]]]):
    """The operations and parameters a client sent, in order."""

    def index_writes(self) -> list[str]:
        """Writes that change an index key: the only ones DynamoDB writes a keys-only
        index for (deletes of bound items aside, which end a session anyway)."""
        touched = []
        for operation, params in self:
            if operation == "PutItem" and INDEX_ATTRIBUTES & params["Item"].keys():
                touched.append(operation)
            if operation == "UpdateItem":
                names = set(params.get("ExpressionAttributeNames", {}).values())
                if INDEX_ATTRIBUTES & names:
                    touched.append(operation)
        return touched


def recorded(app: Flask) -> SentRequests:
    sent = SentRequests()

    def keep(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, dict(params)))

    client = app.session_interface._client  # type: ignore[attr-defined]
    client.meta.events.register("provide-client-params.dynamodb", keep)
    return sent


@pytest.fixture
def bound(make_app: AppFactory) -> Any:
    def build(**config: Any) -> tuple[Flask, CallCounter, SentRequests, Any]:
        app, calls = make_app(**config)
        add_user_routes(app)
        sent = recorded(app)
        client = logged_in(app, "alice", "Browser")
        return app, calls, sent, client

    return build


def test_binding_rides_on_the_login_write(bound) -> None:
    _, calls, sent, _ = bound()
    assert calls == {"PutItem": 1}, "a new session: one put, with its binding"
    assert sent.index_writes() == ["PutItem"]


def test_reads_of_a_bound_session_cost_one_getitem_and_no_write(bound) -> None:
    _, calls, sent, client = bound()
    calls.clear()
    sent.clear()
    for _ in range(5):
        assert client.get("/get").json == {"_user_id": "alice"}
    assert calls == {"GetItem": 5}, "inside the refresh interval nothing is written"


def test_refresh_and_changes_of_a_bound_session_never_write_the_index(bound) -> None:
    _, calls, sent, client = bound(SESSION_DYNAMODB_REFRESH_INTERVAL=0)
    calls.clear()
    sent.clear()

    client.get("/get")  # a refresh on every use, under this setting
    client.get("/set?cart=book")
    client.get("/delete/cart")

    assert calls == {"GetItem": 3, "UpdateItem": 3}
    assert sent.index_writes() == [], "no write named user_id or handle"


def test_unbinding_and_rebinding_ride_on_the_write_that_changes_the_key(bound) -> None:
    _, calls, sent, client = bound()
    client.get("/set?cart=book")  # so that the session outlives the user key
    calls.clear()
    sent.clear()

    client.get("/logout-user")
    client.get("/set?_user_id=bob")

    assert calls == {"GetItem": 2, "UpdateItem": 2}
    assert sent.index_writes() == ["UpdateItem", "UpdateItem"]
