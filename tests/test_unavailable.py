"""DynamoDB unreachable, whoever touches the session first: a view, a ``before_request``
hook, a template, or an ``after_request`` hook such as Flask-Login's, which reads the
session on every request. The answer is always a 503 with one ERROR line per failed
DynamoDB call and no traceback, never a 500 and never an empty session passed off as the
user's; and the 503 keeps the application's own headers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

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
