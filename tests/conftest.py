"""Fixtures: one real DynamoDB-compatible server per test run, one fresh table per test, and
a Flask app wired to it whose DynamoDB calls are counted.

The engine is chosen with ``DYNAMODB_ENGINE`` (``moto``, the default, or ``dynalite``).
"""

from __future__ import annotations

import base64
import logging
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

import boto3
import pytest
from flask import Flask, jsonify, request, session

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance, create_table

from .engines import (
    DUMMY_ACCESS_KEY,
    DUMMY_SECRET_KEY,
    ENGINE_NAMES,
    REGION,
    LocalEngine,
    engine_client,
    start_engine,
)
from .fault_proxy import FaultProxy
from .support import require_dynalite

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ENGINE_NAME = os.environ.get("DYNAMODB_ENGINE", "moto")


@pytest.fixture(scope="session", autouse=True)
def _aws_environment() -> Iterator[None]:
    """boto3 needs a region and credentials even for a local engine; never a real account."""
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_SESSION_TOKEN",
        )
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def engine() -> Iterator[LocalEngine]:
    if ENGINE_NAME not in ENGINE_NAMES:
        raise pytest.UsageError(f"DYNAMODB_ENGINE must be one of {ENGINE_NAMES}")
    with start_engine(ENGINE_NAME) as running:
        yield running


@pytest.fixture
def dynalite_required() -> None:
    """For tests that start dynalite themselves, whatever the run's engine."""
    require_dynalite()


@pytest.fixture(scope="session")
def admin_client(engine: LocalEngine) -> DynamoDBClient:
    """A client for the tests' own look at the table (never counted as the app's calls)."""
    return engine_client(engine.endpoint_url)


@pytest.fixture
def table_name(admin_client: DynamoDBClient) -> Iterator[str]:
    name = f"sessions-{uuid.uuid4().hex[:12]}"
    create_table(name, client=admin_client)
    yield name
    admin_client.delete_table(TableName=name)


class CallCounter(Counter[str]):
    """DynamoDB operations an app's client sent, by name (``GetItem``, ...)."""

    def total(self) -> int:  # Counter.total() is 3.10+
        return sum(self.values())

    def writes(self) -> int:
        return sum(self[op] for op in ("PutItem", "UpdateItem", "DeleteItem"))


def counted_client(endpoint_url: str, **config: Any) -> tuple[DynamoDBClient, CallCounter]:
    client = engine_client(endpoint_url, **config)
    calls = CallCounter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    return client, calls


class CountingSession:
    """A boto3 session that counts the DynamoDB clients built from it and their calls."""

    def __init__(self) -> None:
        self.session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY,
            aws_secret_access_key=DUMMY_SECRET_KEY,
            region_name=REGION,
        )
        self.clients = 0
        self.calls = 0
        events = self.session.events
        events.register("creating-client-class.dynamodb", self._built)
        events.register("before-call.dynamodb", self._called)

    def _built(self, **_: Any) -> None:
        self.clients += 1

    def _called(self, **_: Any) -> None:
        self.calls += 1


def add_routes(app: Flask) -> None:
    """Routes that do what a view would do with the session."""
    sess: DynamoDbSessionInstance = session  # type: ignore[assignment]

    @app.route("/set", methods=["GET", "POST"])
    def set_values() -> Any:
        for key, value in request.args.items():
            sess[key] = value
        return jsonify(dict(sess))

    @app.route("/get")
    def get_values() -> Any:
        return jsonify(dict(sess))

    @app.route("/append/<key>/<value>")
    def append(key: str, value: str) -> Any:
        sess.setdefault(key, []).append(value)
        return jsonify(dict(sess))

    @app.route("/delete/<key>")
    def delete(key: str) -> Any:
        sess.pop(key, None)
        return jsonify(dict(sess))

    @app.route("/clear")
    def clear() -> Any:
        sess.clear()
        for key, value in request.args.items():
            sess[key] = value
        return "cleared"

    @app.route("/abandon")
    def abandon() -> Any:
        sess.abandon()
        return "abandoned"

    @app.route("/create")
    def create() -> Any:
        sess.create()
        for key, value in request.args.items():
            sess[key] = value
        return "created"

    @app.route("/regenerate")
    def regenerate() -> Any:
        sess.regenerate()
        return "regenerated"

    @app.route("/save-then-set")
    def save_then_set() -> Any:
        sess["first"] = "1"
        sess.save()
        sess["second"] = "2"
        return "saved"

    @app.route("/meta")
    def meta() -> Any:
        data = dict(sess)  # loads the record, so the times below are known
        return jsonify(created_at=sess.created_at, expires_at=sess.expires_at, data=data)

    @app.route("/untouched")
    def untouched() -> Any:
        return "no session use"

    @app.route("/failed")
    def failed() -> Any:
        return jsonify(failed_sid=sess.failed_sid, new=sess.new)


AppFactory = Callable[..., tuple[Flask, CallCounter]]


@pytest.fixture
def make_app(engine: LocalEngine, table_name: str) -> AppFactory:
    """``make_app(**config)`` builds a test app on this test's table; returns the app and
    the counter of its DynamoDB calls."""

    def factory(
        interface: DynamoDbSession | None = None, **config: Any
    ) -> tuple[Flask, CallCounter]:
        client, calls = counted_client(engine.endpoint_url)
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SESSION_DYNAMODB_TABLE_NAME=table_name,
            # The test client talks plain http; a Secure cookie would not be sent back.
            SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
        )
        app.config.update(config)
        app.session_interface = interface or DynamoDbSession(client=client)
        add_routes(app)
        return app, calls

    return factory


@pytest.fixture
def app_and_calls(make_app: AppFactory) -> tuple[Flask, CallCounter]:
    return make_app()


def item_count(client: DynamoDBClient, table_name: str) -> int:
    """The items in the table now (a consistent Scan: a write just made is counted)."""
    return client.scan(TableName=table_name, Select="COUNT", ConsistentRead=True)["Count"]


# -- DynamoDB misbehaving ---------------------------------------------------------------

LOGGER = "dynamodb_session_flask"
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0
MAX_ATTEMPTS = 3


def worst_case_seconds(connect: float, read: float, attempts: int) -> float:
    """Longest a request may take to give up: every attempt timing out, plus botocore
    standard mode's backoff (at most 2 ** (n - 1) s before retry n), plus slack for a busy
    machine."""
    backoff = sum(min(20.0, 2.0**n) for n in range(attempts - 1))
    return attempts * (connect + read) + backoff + 2.0


@pytest.fixture
def proxy(engine: LocalEngine) -> Iterator[FaultProxy]:
    with FaultProxy(engine.endpoint_url) as running:
        yield running


def proxied_app(make_app: AppFactory, proxy: FaultProxy, **config: Any) -> Flask:
    """An app whose own client goes through the proxy, with a small retry budget."""
    client = engine_client(
        proxy.url,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )
    app, _ = make_app(interface=DynamoDbSession(client=client), **config)
    return app


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.ERROR
    ]


def random_text(size: int, seed: int = 0) -> str:
    """``size`` characters of base64 of random bytes: text that compression cannot shrink
    by a third, so it is stored, and counted, at its full size. Seeded: the same every run."""
    data = random.Random(seed).randbytes(size * 3 // 4 + 3)
    return base64.b64encode(data).decode()[:size]
