"""The shared DynamoDB client: built by ``init_app`` at start-up without any call, once
per process, and rebuilt in a child process after a fork."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from botocore.config import Config
from flask import Flask, session

from dynamodb_session_flask import DynamoDbSession

from .conftest import CountingSession
from .engines import LocalEngine
from .fault_proxy import FaultProxy


def make_app(engine: LocalEngine, table_name: str, counting: CountingSession) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url,
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    DynamoDbSession(boto3_session=counting.session).init_app(app)

    @app.route("/visit")
    def visit() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    return app


def test_init_app_builds_the_client_without_calling_dynamodb(
    engine: LocalEngine, table_name: str
) -> None:
    counting = CountingSession()
    app = make_app(engine, table_name, counting)
    assert (counting.clients, counting.calls) == (1, 0)

    client = app.test_client()
    assert [client.get("/visit").text for _ in range(3)] == ["1", "2", "3"]
    # Requests share the client built at start-up.
    assert counting.clients == 1


def test_a_forked_child_builds_its_own_client(engine: LocalEngine, table_name: str) -> None:
    counting = CountingSession()
    app = make_app(engine, table_name, counting)
    parent_client = app.session_interface.context(app).store._client()  # type: ignore[attr-defined]

    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process that has threads; a pre-forking
        # server does exactly that, which is the case under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: answer over the pipe, never return into pytest
        status = 1
        try:
            os.close(read_end)
            visits = app.test_client().get("/visit").text
            child_client = app.session_interface.context(app).store._client()  # type: ignore[attr-defined]
            report = f"{visits} {child_client is parent_client} {counting.clients}"
            os.write(write_end, report.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        report = answer.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The child served a request with a client of its own, not the parent's pool.
    assert report == "1 False 2"
    assert counting.clients == 1


def test_init_app_without_a_region_starts_and_answers_503(
    engine: LocalEngine,
    table_name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No region anywhere boto3 looks: environment or config file.
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url, SESSION_DYNAMODB_TABLE_NAME=table_name
    )

    @app.route("/visit")
    def visit() -> str:
        session["visits"] = 1
        return "visited"

    # Building the client early is an optimisation: its failure does not stop the app.
    DynamoDbSession().init_app(app)
    assert "not built at start-up" in caplog.text
    # The first request that needs the client tries again and tells the truth.
    assert app.test_client().get("/visit").status_code == 503
    # Requests that never touch the session are served as usual.
    assert app.test_client().get("/nowhere").status_code == 404


def test_botocore_config_is_merged_over_the_settings(
    engine: LocalEngine, table_name: str, proxy: FaultProxy
) -> None:
    """``botocore_config`` adds to what the settings give the client, it does not replace
    it: here it lowers the attempts to one, while the settings' read timeout still holds."""
    counting = CountingSession()
    app = make_app(engine, table_name, counting)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=proxy.url,
        SESSION_DYNAMODB_READ_TIMEOUT=0.5,
        SESSION_DYNAMODB_MAX_ATTEMPTS=3,
    )
    DynamoDbSession(
        boto3_session=counting.session,
        botocore_config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    ).init_app(app)
    client = app.test_client()
    assert client.get("/visit").data == b"1"
    # Slower than the settings' read timeout, well within botocore's default of 60 s.
    proxy.delay(2.0, operation="GetItem")
    proxy.reset_counts()

    assert client.get("/visit").status_code == 503
    assert proxy.count("GetItem") == 1
