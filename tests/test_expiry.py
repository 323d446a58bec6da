"""Idle and absolute timeouts, checked on every read against a controllable clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import session

from .conftest import AppFactory
from .support import FrozenClockSession, expires_cookie, freeze_clock


@pytest.fixture
def clocked(make_app: AppFactory):
    def build(**config):
        app, calls = make_app(**config)
        return app, freeze_clock(app), calls

    return build


def test_idle_timeout_ends_an_unused_session(clocked) -> None:
    app, clock, _ = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    client = app.test_client()
    client.get("/set?a=1")

    clock.advance(99)
    assert client.get("/get").json == {"a": "1"}
    clock.advance(99)
    assert client.get("/get").json == {"a": "1"}, "each use within the idle timeout extends it"
    clock.advance(101)
    assert client.get("/get").json == {}


@pytest.mark.parametrize("activity", ["/get", "/regenerate"])
def test_absolute_timeout_ends_even_an_active_session(clocked, activity: str) -> None:
    """Neither use nor ``regenerate()`` (which moves the data to a new record) restarts
    the absolute timeout: it counts from the session's creation."""
    app, clock, _ = clocked(
        SESSION_DYNAMODB_IDLE_TIMEOUT=100, SESSION_DYNAMODB_ABSOLUTE_TIMEOUT=250
    )
    client = app.test_client()
    client.get("/set?a=1")
    for _ in range(4):
        clock.advance(60)
        client.get(activity)
        assert client.get("/get").json == {"a": "1"}
    clock.advance(10)  # 250 s after the session began
    assert client.get("/get").json == {}


@pytest.mark.parametrize(
    ("absolute", "lifetime", "expected"),
    [(None, timedelta(seconds=300), 300), (200, 300, 200), (None, None, 43200)],
)
def test_absolute_timeout_is_the_smaller_of_both_settings(
    clocked, absolute, lifetime, expected
) -> None:
    config = {"SESSION_DYNAMODB_IDLE_TIMEOUT": 10**6}
    if absolute is not None:
        config["SESSION_DYNAMODB_ABSOLUTE_TIMEOUT"] = absolute
    if lifetime is not None:
        config["PERMANENT_SESSION_LIFETIME"] = lifetime
    app, clock, _ = clocked(**config)
    client = app.test_client()
    client.get("/set?a=1")
    clock.advance(expected - 1)
    assert client.get("/get").json == {"a": "1"}
    clock.advance(1)
    assert client.get("/get").json == {}


def test_expired_item_still_in_the_table_is_never_loaded(clocked, admin_client, table_name) -> None:
    app, clock, _ = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    client = app.test_client()
    client.get("/set?a=1")
    clock.advance(100)
    assert admin_client.scan(TableName=table_name, Select="COUNT")["Count"] == 1
    assert client.get("/get").json == {}


def test_refresh_written_at_most_once_per_interval(clocked) -> None:
    app, clock, calls = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=7200)
    client = app.test_client()
    client.get("/set?a=1")
    calls.clear()
    for _ in range(10):
        clock.advance(5)
        client.get("/get")
    assert calls == {"GetItem": 10}
    clock.advance(15)
    calls.clear()
    client.get("/get")
    assert calls == {"GetItem": 1, "UpdateItem": 1}, "60 s after the last write, one refresh"


# -- regenerate() keeps the session's age ---------------------------------------------


def test_regenerate_keeps_the_creation_time(clocked) -> None:
    app, clock, _ = clocked()
    client = app.test_client()
    client.get("/set?a=1")
    created = client.get("/meta").json["created_at"]

    clock.advance(30)
    client.get("/regenerate")

    assert client.get("/meta").json["created_at"] == created


# -- a write that lands after the expiry ---------------------------------------------


def add_late_write_route(app, clock: FrozenClockSession) -> None:
    @app.route("/late-write/<int:seconds>")
    def late_write(seconds: int):
        len(session)  # loaded while live
        clock.advance(seconds)  # the request takes its time
        session["late"] = "write"
        return "written"


@pytest.mark.parametrize("expiry", ["idle", "absolute"])
def test_write_after_expiry_does_not_revive_the_session(clocked, expiry: str) -> None:
    app, clock, _ = clocked(
        SESSION_DYNAMODB_IDLE_TIMEOUT=100, SESSION_DYNAMODB_ABSOLUTE_TIMEOUT=150
    )
    add_late_write_route(app, clock)
    client = app.test_client()
    client.get("/set?a=1")
    if expiry == "absolute":
        clock.advance(90)
        assert client.get("/set?b=2").status_code == 200  # refreshed: idle expiry moves on

    response = client.get("/late-write/101" if expiry == "idle" else "/late-write/61")

    assert response.status_code == 200
    assert expires_cookie(response)
    assert client.get("/get").json == {}


def test_regenerate_after_expiry_does_not_revive_the_session(
    clocked, admin_client, table_name
) -> None:
    app, clock, _ = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=100)

    @app.route("/late-regenerate")
    def late_regenerate():
        len(session)
        clock.advance(101)
        session.regenerate()
        return "regenerated"

    client = app.test_client()
    client.get("/set?a=1")
    response = client.get("/late-regenerate")

    assert expires_cookie(response)
    assert admin_client.scan(TableName=table_name, Select="COUNT")["Count"] == 1, "left to TTL"
    assert client.get("/get").json == {}


# -- settings shortened while sessions are live -----------------------------------------


@pytest.mark.parametrize(
    ("setting", "elapsed"),
    [("SESSION_DYNAMODB_IDLE_TIMEOUT", 150), ("SESSION_DYNAMODB_ABSOLUTE_TIMEOUT", 150)],
)
def test_shortened_timeout_applies_to_existing_sessions(
    clocked, setting: str, elapsed: int
) -> None:
    before, old_clock, _ = clocked(
        SESSION_DYNAMODB_IDLE_TIMEOUT=1000, SESSION_DYNAMODB_ABSOLUTE_TIMEOUT=5000
    )
    client = before.test_client()
    client.get("/set?a=1")
    sid = client.get_cookie("id").value

    # The operator redeploys with a shorter timeout: a new app on the same table.
    after, new_clock, _ = clocked(**{setting: 100})
    new_clock.current = old_clock.current
    redeployed = after.test_client()
    redeployed.set_cookie("id", sid)
    new_clock.advance(50)
    assert redeployed.get("/get").json == {"a": "1"}
    new_clock.advance(elapsed)
    assert redeployed.get("/get").json == {}


def test_longer_timeout_does_not_extend_existing_sessions(clocked) -> None:
    before, old_clock, _ = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    client = before.test_client()
    client.get("/set?a=1")
    sid = client.get_cookie("id").value

    after, new_clock, _ = clocked(SESSION_DYNAMODB_IDLE_TIMEOUT=1000)
    new_clock.current = old_clock.current
    redeployed = after.test_client()
    redeployed.set_cookie("id", sid)
    new_clock.advance(101)
    assert redeployed.get("/get").json == {}
