"""DynamoDB misbehaving: throttling, 500s, dropped connections, slow answers, restarts.

A fault-injecting proxy sits between the app's DynamoDB client and the engine. A short fault
is retried and the user notices nothing; a lasting one is a 503 within a bounded time, with
an ERROR log line naming the failed operation, and never a half-written session or a 200
pretending the session is empty.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from dynamodb_session_flask import DynamoDbSession, create_table

from .conftest import (
    CONNECT_TIMEOUT,
    LOGGER,
    MAX_ATTEMPTS,
    READ_TIMEOUT,
    AppFactory,
    add_routes,
    error_lines,
    item_count,
    proxied_app,
    worst_case_seconds,
)
from .engines import LocalEngine, engine_client, start_engine
from .fault_proxy import FaultProxy
from .support import cookie_id, require_dynalite

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def configured_app(
    make_app: AppFactory, proxy: FaultProxy, *, read_timeout: float, max_attempts: int
) -> Flask:
    """An app that builds its own client from the SESSION_DYNAMODB_* settings."""
    app, _ = make_app(
        interface=DynamoDbSession(),
        SESSION_DYNAMODB_ENDPOINT_URL=proxy.url,
        SESSION_DYNAMODB_CONNECT_TIMEOUT=CONNECT_TIMEOUT,
        SESSION_DYNAMODB_READ_TIMEOUT=read_timeout,
        SESSION_DYNAMODB_MAX_ATTEMPTS=max_attempts,
    )
    return app


def stored_data(admin_client: DynamoDBClient, table_name: str) -> list[dict[str, Any]]:
    """Every item's ``data`` map, read behind the app's back."""
    items = admin_client.scan(TableName=table_name)["Items"]
    return [dict(item["data"]["M"]) for item in items]


# -- short faults are retried ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "operation", "n", "existing"),
    [
        ("throttle", "GetItem", 2, True),
        ("server_error", "UpdateItem", 1, True),
        ("throttle", "PutItem", 1, False),
    ],
)
@pytest.mark.parametrize("client_from", ["constructor", "settings"])
def test_short_throttling_or_500s_are_retried_and_the_request_succeeds(
    make_app: AppFactory,
    proxy: FaultProxy,
    admin_client: DynamoDBClient,
    table_name: str,
    fault: str,
    operation: str,
    n: int,
    existing: bool,
    client_from: str,
) -> None:
    if client_from == "settings":
        app = configured_app(make_app, proxy, read_timeout=READ_TIMEOUT, max_attempts=MAX_ATTEMPTS)
    else:
        app = proxied_app(make_app, proxy)
    client = app.test_client()
    if existing:
        client.get("/set?a=before")
    proxy.reset_counts()

    getattr(proxy, fault)(n, operation)
    response = client.get("/set?a=after")

    assert response.status_code == 200
    assert response.json == {"a": "after"}
    assert proxy.count(operation) == n + 1, "each injected fault costs one retry"
    assert client.get("/get").json == {"a": "after"}
    assert item_count(admin_client, table_name) == 1


# -- lasting faults are a bounded 503 -------------------------------------------------

# (name, operation that fails, path requested, whether a session exists beforehand)
LASTING = [
    ("read", "GetItem", "/get", True),
    ("change", "UpdateItem", "/set?a=changed&b=new", True),
    ("create", "PutItem", "/set?a=changed", False),
    ("logout", "DeleteItem", "/clear", True),
    ("abandon", "DeleteItem", "/abandon", True),
]


@pytest.mark.parametrize("fault", ["drop", "server_error"])
@pytest.mark.parametrize(
    ("scenario", "operation", "path", "existing"), LASTING, ids=[s[0] for s in LASTING]
)
def test_lasting_failure_is_a_bounded_503_and_writes_nothing(
    make_app: AppFactory,
    proxy: FaultProxy,
    admin_client: DynamoDBClient,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    scenario: str,
    operation: str,
    path: str,
    existing: bool,
) -> None:
    app = proxied_app(make_app, proxy)
    client = app.test_client()
    sid = cookie_id(client.get("/set?a=1")) if existing else None
    before = stored_data(admin_client, table_name)

    # "drop" is the engine being unreachable; every answer a 500 is it failing beyond the
    # retry budget. The fault hits only the operation under test, so the earlier GetItem
    # of a changing request succeeds and the write itself is what fails.
    getattr(proxy, fault)(None, operation)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        response = client.get(path)
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert elapsed < worst_case_seconds(CONNECT_TIMEOUT, READ_TIMEOUT, MAX_ATTEMPTS) < 10
    assert proxy.count(operation) == MAX_ATTEMPTS
    assert "Set-Cookie" not in response.headers, "neither a new id nor a logout was confirmed"
    assert any(operation in line for line in error_lines(caplog)), caplog.text
    if sid is not None:
        assert sid not in caplog.text

    proxy.clear()
    assert stored_data(admin_client, table_name) == before
    if existing:
        # Still the session as it was before the failed request, not an empty one.
        assert client.get("/get").json == {"a": "1"}
    else:
        assert item_count(admin_client, table_name) == 0


def test_unreachable_engine_never_passes_for_an_empty_session(
    make_app: AppFactory, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    app = proxied_app(make_app, proxy)
    client = app.test_client()
    client.get("/set?a=1")

    proxy.drop()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for path in ["/get", "/set?b=2", "/failed"]:
            response = client.get(path)
            assert response.status_code == 503, (path, response.data)
    assert error_lines(caplog)

    proxy.clear()
    assert client.get("/get").json == {"a": "1"}


def test_answer_slower_than_the_read_timeout_is_a_bounded_503(
    make_app: AppFactory,
    proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    read_timeout = 0.5
    attempts = 2
    app = configured_app(make_app, proxy, read_timeout=read_timeout, max_attempts=attempts)
    client = app.test_client()
    client.get("/set?a=1")
    proxy.reset_counts()

    proxy.delay(5 * read_timeout, operation="GetItem")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        response = client.get("/get")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    # The settings' timeout and attempts are what bound the wait.
    assert (
        attempts * read_timeout
        <= elapsed
        < worst_case_seconds(CONNECT_TIMEOUT, read_timeout, attempts)
    )
    assert proxy.count("GetItem") == attempts
    assert any("GetItem" in line for line in error_lines(caplog)), caplog.text

    proxy.clear()
    assert client.get("/get").json == {"a": "1"}


# -- the engine restarting ------------------------------------------------------------


@pytest.fixture
def persistent_engine(tmp_path: Any) -> Iterator[LocalEngine]:
    require_dynalite()
    with start_engine("dynalite", data_path=str(tmp_path / "dynalite")) as running:
        yield running


def test_existing_session_survives_an_engine_restart(
    persistent_engine: LocalEngine,
) -> None:
    admin = persistent_engine.client()
    table = f"sessions-{uuid.uuid4().hex[:12]}"
    create_table(table, client=admin)
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SESSION_DYNAMODB_TABLE_NAME=table,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    app.session_interface = DynamoDbSession(
        client=engine_client(
            persistent_engine.endpoint_url,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 2},
        )
    )
    add_routes(app)
    client = app.test_client()
    sid = cookie_id(client.get("/set?a=1"))

    persistent_engine.restart()
    assert client.get("/get").json == {"a": "1"}, "kept-alive connections are replaced"

    persistent_engine.stop()
    assert client.get("/set?b=2").status_code == 503
    persistent_engine.start()

    response = client.get("/set?b=2")
    assert response.status_code == 200
    assert cookie_id(response) == sid
    assert client.get("/get").json == {"a": "1", "b": "2"}
