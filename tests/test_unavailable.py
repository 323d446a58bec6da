"""DynamoDB unreachable, whoever touches the session first: a view, a ``before_request``
hook, a template, or an ``after_request`` hook such as Flask-Login's, which reads the
session on every request. The answer is always a 503 with one ERROR line per failed
DynamoDB call and no traceback, never a 500 and never an empty session passed off as the
user's; and the 503 keeps the application's own headers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import pytest
from flask import Flask, jsonify, render_template_string, request, session
from flask_login import LoginManager, UserMixin, login_user
from werkzeug.http import parse_cookie

from dynamodb_session_flask import SessionBackendError

from .conftest import AppFactory, proxied_app
from .fault_proxy import FaultProxy

if TYPE_CHECKING:
    from werkzeug.wrappers import Response


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def flask_login_app(make_app: AppFactory, proxy: FaultProxy, **config: Any) -> Flask:
    """A test app with Flask-Login, security headers and a cookie of its own."""
    # A production app: an exception would be a 500 response, not propagate to the test.
    app = proxied_app(make_app, proxy, TESTING=False, **config)
    login_manager = LoginManager(app)
    login_manager.user_loader(User)

    @app.route("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name))
        return "logged in"

    @app.route("/whoami")
    def whoami() -> Any:
        return jsonify(user=session.get("_user_id"))

    @app.route("/template")
    def template() -> str:
        return render_template_string("{{ session.get('_user_id') }}")

    @app.route("/swallow")
    def swallow() -> Any:
        # A view that catches the error and goes on must not get a 200 out of it.
        try:
            session.get("_user_id")
        except SessionBackendError:
            pass
        return jsonify(user=session.get("_user_id"))

    @app.before_request
    def hooked() -> None:
        if request.path == "/hooked":
            session.get("_user_id")

    @app.route("/hooked")
    def hooked_view() -> str:
        return "view"

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Strict-Transport-Security"] = "max-age=63072000"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        response.set_cookie("pref", "dark")
        return response

    return app


def all_error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "path",
    ["/untouched", "/whoami", "/template", "/hooked", "/swallow", "/set?a=1", "/failed"],
)
def test_unreachable_dynamodb_is_a_503_whoever_touches_the_session_first(
    make_app: AppFactory, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    app = flask_login_app(make_app, proxy)
    client = app.test_client()
    assert client.get("/login/alice").status_code == 200

    proxy.server_error(None, "GetItem")
    with caplog.at_level(logging.INFO):
        response = client.get(path)

    assert response.status_code == 503, response.data
    errors = all_error_records(caplog)
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert "GetItem" in errors[0].getMessage()
    assert errors[0].exc_info is None, "a log line, not a traceback"
    assert b"alice" not in response.data and b"null" not in response.data

    proxy.clear()
    assert client.get("/whoami").json == {"user": "alice"}, "the session itself is intact"


@pytest.mark.parametrize(
    ("operation", "path"), [("GetItem", "/untouched"), ("UpdateItem", "/set?a=1")]
)
def test_503_keeps_the_applications_headers(
    make_app: AppFactory, proxy: FaultProxy, operation: str, path: str
) -> None:
    app = flask_login_app(make_app, proxy)
    client = app.test_client()
    client.get("/login/alice")

    proxy.server_error(None, operation)
    response = client.get(path)

    assert response.status_code == 503
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.headers["Retry-After"]
    assert "no-store" in response.headers["Cache-Control"]
    assert response.mimetype == "text/html", "the discarded JSON body's type went with it"
    cookies = [parse_cookie(header) for header in response.headers.getlist("Set-Cookie")]
    assert [cookie.get("pref") for cookie in cookies] == ["dark"], "the app's cookie is kept"
    assert not any("id" in cookie for cookie in cookies), "neither a new id nor a logout"


def test_a_view_does_not_go_on_past_its_first_use_of_an_unavailable_session(
    make_app: AppFactory, proxy: FaultProxy
) -> None:
    """The 503 at the end is not enough: a view that carried on with an empty session
    could act on it (a charge without a user, a form without its CSRF token)."""
    app = proxied_app(make_app, proxy, TESTING=False)
    went_on: list[Any] = []

    @app.route("/charge")
    def charge() -> str:
        went_on.append(session.get("user"))
        return "charged"

    client = app.test_client()
    client.get("/set?user=alice")
    proxy.server_error(None, "GetItem")

    assert client.get("/charge").status_code == 503
    assert went_on == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.user_sessions(),
        lambda s: s.end_other_sessions(),
        lambda s: s.end_user_session("A" * 22),
    ],
    ids=["user_sessions", "end_other_sessions", "end_user_session"],
)
def test_per_user_calls_never_read_an_outage_as_no_user(
    make_app: AppFactory, proxy: FaultProxy, call: Callable[[Any], Any]
) -> None:
    """After a view caught the first failure, a per-user call must fail too rather than
    answer as for a session without a user ([], 0, False)."""
    app = proxied_app(make_app, proxy, TESTING=False)
    answers: list[Any] = []

    @app.route("/devices")
    def devices() -> str:
        try:
            session.get("_user_id")
        except SessionBackendError:
            pass  # a fallback page, say
        answers.append(call(session))
        return "listed"

    client = app.test_client()
    client.get("/set?_user_id=alice")
    proxy.server_error(None, "GetItem")

    assert client.get("/devices").status_code == 503
    assert answers == []


def test_header_mode_503_carries_no_id(make_app: AppFactory, proxy: FaultProxy) -> None:
    """A failed save replaces the view's response; the id header and cookie it carried go
    too."""
    app = proxied_app(make_app, proxy, TESTING=False, SESSION_DYNAMODB_USE_HEADER=True)

    @app.route("/visit")
    def visit() -> Any:
        session["seen"] = "1"
        response = jsonify(dict(session))
        # An API that hands the caller its id back, as some mobile clients expect, in the
        # header and in a cookie of the session cookie's name.
        response.headers["x-id"] = request.headers.get("x-id", "")
        response.set_cookie("id", request.headers.get("x-id", ""))
        return response

    sid = app.test_client().get("/set?a=1").headers["x-id"]
    cookieless = app.test_client(use_cookies=False)
    proxy.server_error(None, "UpdateItem")

    response = cookieless.get("/visit", headers={"x-id": sid})

    assert response.status_code == 503
    assert "x-id" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert {"Cookie", "x-id"} <= set(response.vary)
    proxy.clear()
    assert cookieless.get("/get", headers={"x-id": sid}).json == {"a": "1"}


def test_after_a_caught_failure_the_session_reads_as_empty_and_unsaved(
    make_app: AppFactory, proxy: FaultProxy
) -> None:
    """What the docstring promises once the first use failed: later uses see an empty,
    unstored session (never the user's, never an error of their own), and the answer is a
    503 all the same."""
    app = proxied_app(make_app, proxy, TESTING=False)
    seen: list[Any] = []

    @app.route("/fallback")
    def fallback() -> str:
        try:
            session.get("user")
        except SessionBackendError:
            pass
        seen.append((dict(session), session.new, session.created_at, session.expires_at))
        return "fallback page"

    client = app.test_client()
    client.get("/set?user=alice")
    proxy.server_error(None, "GetItem")

    assert client.get("/fallback").status_code == 503
    assert seen == [({}, True, None, None)]


def test_header_mode_503_is_one_error_line_and_no_id(
    make_app: AppFactory, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # (Flask only logs an error raised while finishing an error response: the log shows it.)
    app = proxied_app(make_app, proxy, TESTING=False, SESSION_DYNAMODB_USE_HEADER=True)
    sid = app.test_client().get("/set?a=1").headers["x-id"]
    proxy.server_error(None, "GetItem")

    with caplog.at_level(logging.INFO):
        response = app.test_client(use_cookies=False).get("/get", headers={"x-id": sid})

    assert response.status_code == 503
    assert "x-id" not in response.headers
    errors = all_error_records(caplog)
    assert [record.exc_info for record in errors] == [None], [r.getMessage() for r in errors]
