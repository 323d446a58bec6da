"""Backend failures are a 503 with a log line, never a silent empty session."""

from __future__ import annotations

import logging
import socket

import pytest

from .conftest import AppFactory
from .engines import engine_client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_dynamodb_is_a_503(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app()
    client = app.test_client()
    sid = client.get("/set?a=1").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

    unreachable, _ = make_app()
    unreachable.session_interface._client = engine_client(  # type: ignore[attr-defined]
        f"http://127.0.0.1:{closed_port()}", retries={"mode": "standard", "total_max_attempts": 1}
    )
    broken = unreachable.test_client()
    broken.set_cookie("id", sid)

    with caplog.at_level(logging.ERROR, logger="dynamodb_session_flask"):
        response = broken.get("/get")
    assert response.status_code == 503
    assert "GetItem" in caplog.text
    assert sid not in caplog.text


def test_missing_table_is_a_503_on_save(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME="no-such-table")
    response = app.test_client().get("/set?a=1")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers


def test_raw_ids_never_logged(make_app: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    client = app.test_client()
    with caplog.at_level(logging.DEBUG):
        for value in ["A" * 43, "garbage-id"]:
            client.set_cookie("id", value)
            client.get("/failed")
            assert value not in caplog.text
