"""Idle and absolute timeouts, checked on every read against a controllable clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dynamodb_session_flask import DynamoDbSession

from .conftest import AppFactory


class FrozenClockSession(DynamoDbSession):
    """The interface with its one clock under the test's control."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.current = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clocked(make_app: AppFactory):
    def build(**config):
        app, calls = make_app(**config)
        interface = FrozenClockSession(client=app.session_interface._client)  # type: ignore[attr-defined]
        app.session_interface = interface
        return app, interface, calls

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


def test_absolute_timeout_ends_even_an_active_session(clocked) -> None:
    app, clock, _ = clocked(
        SESSION_DYNAMODB_IDLE_TIMEOUT=100, SESSION_DYNAMODB_ABSOLUTE_TIMEOUT=250
    )
    client = app.test_client()
    client.get("/set?a=1")
    for _ in range(4):
        clock.advance(60)
        assert client.get("/get").json == {"a": "1"}
    clock.advance(11)
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
