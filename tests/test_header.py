"""Header mode: the id is returned in a header (and the cookie); the cookie still wins."""

from __future__ import annotations

from werkzeug.http import parse_cookie

from .conftest import AppFactory


def test_id_returned_in_default_header_and_cookie(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USE_HEADER=True)
    response = app.test_client().get("/set?val=x")

    sid = response.headers["x-id"]
    assert len(sid) == 43
    assert parse_cookie(response.headers["Set-Cookie"])["id"] == sid


def test_header_alone_loads_the_session(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USE_HEADER=True, SESSION_DYNAMODB_HEADER_NAME="x-session")
    sid = app.test_client().get("/set?val=x").headers["x-session"]

    cookieless = app.test_client(use_cookies=False)
    response = cookieless.get("/get", headers={"x-session": sid})

    assert response.json == {"val": "x"}
    assert response.headers["x-session"] == sid


def test_cookie_used_when_available(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USE_HEADER=True)
    client = app.test_client()
    sid = client.get("/set?val=from-cookie").headers["x-id"]
    other_sid = app.test_client().get("/set?val=from-header").headers["x-id"]

    response = client.get("/get", headers={"x-id": other_sid})

    assert client.get_cookie("id").value == sid  # type: ignore[union-attr]
    assert response.json == {"val": "from-cookie"}


def test_no_header_for_a_session_without_data(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USE_HEADER=True)
    response = app.test_client().get("/get")
    assert "x-id" not in response.headers
    assert "Set-Cookie" not in response.headers
