"""Flask's own session tests (tests/test_basic.py in Flask's repository, 3.0.3 and 3.1.3),
run against this session interface: what an application written for Flask's cookie session
expects. Flask's tests are as written, with the app and client of this suite."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import flask
import pytest
from flask.globals import request_ctx
from flask.testing import FlaskClient
from markupsafe import Markup

from dynamodb_session_flask import DynamoDbSession

from .conftest import AppFactory
from .engines import LocalEngine, engine_client


@pytest.fixture
def app(engine: LocalEngine, table_name: str) -> flask.Flask:
    """Flask's own ``app`` fixture, with this package's session interface on this test's
    table (and no routes of this suite's)."""
    app = flask.Flask("flask_test")
    app.config.update(
        TESTING=True,
        SECRET_KEY="test key",
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    app.session_interface = DynamoDbSession(client=engine_client(engine.endpoint_url))
    return app


@pytest.fixture
def client(app: flask.Flask) -> FlaskClient:
    return app.test_client()


# Flask 3.1 sets ``accessed`` on every use of the ``flask.session`` proxy and keeps the
# session on the request context as ``_session``; the test below is from 3.1.
FLASK_3_1 = isinstance(getattr(flask.ctx.RequestContext, "session", None), property)


@pytest.mark.skipif(not FLASK_3_1, reason="Flask 3.1's test")
def test_session_accessed(app: flask.Flask, client: FlaskClient) -> None:
    @app.post("/")
    def do_set() -> str:
        flask.session["value"] = flask.request.form["value"]
        return "value set"

    @app.get("/")
    def do_get() -> Any:
        return flask.session.get("value", "None")

    @app.get("/nothing")
    def do_nothing() -> str:
        return ""

    with client:
        rv = client.get("/nothing")
        assert "cookie" not in rv.vary
        assert not request_ctx._session.accessed
        assert not request_ctx._session.modified

    with client:
        rv = client.post(data={"value": "42"})
        assert rv.text == "value set"
        assert "cookie" in rv.vary
        assert request_ctx._session.accessed
        assert request_ctx._session.modified

    with client:
        rv = client.get()
        assert rv.text == "42"
        assert "cookie" in rv.vary
        assert request_ctx._session.accessed
        assert not request_ctx._session.modified

    with client:
        rv = client.get("/nothing")
        assert rv.text == ""
        assert "cookie" not in rv.vary
        assert not request_ctx._session.accessed
        assert not request_ctx._session.modified


def test_session_vary_cookie(make_app: AppFactory) -> None:
    app, _ = make_app()
    client = app.test_client()

    @app.route("/set-test")
    def flask_set_session() -> str:
        flask.session["test"] = "test"
        return ""

    @app.route("/get-test")
    def flask_get() -> Any:
        return flask.session.get("test")

    @app.route("/getitem")
    def flask_getitem() -> Any:
        return flask.session["test"]

    @app.route("/setdefault")
    def flask_setdefault() -> Any:
        return flask.session.setdefault("test", "default")

    @app.route("/clear-test")
    def flask_clear() -> str:
        flask.session.clear()
        return ""

    @app.route("/vary-cookie-header-set")
    def flask_vary_cookie_header_set() -> flask.Response:
        response = flask.Response()
        response.vary.add("Cookie")
        flask.session["test"] = "test"
        return response

    @app.route("/vary-header-set")
    def flask_vary_header_set() -> flask.Response:
        response = flask.Response()
        response.vary.update(("Accept-Encoding", "Accept-Language"))
        flask.session["test"] = "test"
        return response

    @app.route("/no-vary-header")
    def flask_no_vary_header() -> str:
        return ""

    def expect(path: str, header_value: str | None = "Cookie") -> None:
        rv = client.get(path)
        if header_value:
            # The 'Vary' key should exist in the headers only once.
            assert len(rv.headers.get_all("Vary")) == 1
            assert rv.headers["Vary"] == header_value
        else:
            assert "Vary" not in rv.headers

    expect("/set-test")
    expect("/get-test")
    expect("/getitem")
    expect("/setdefault")
    expect("/clear-test")
    expect("/vary-cookie-header-set")
    expect("/vary-header-set", "Accept-Encoding, Accept-Language, Cookie")
    expect("/no-vary-header", None)


def test_session_stored_last(make_app: AppFactory) -> None:
    app, _ = make_app()
    client = app.test_client()

    @app.after_request
    def flask_modify_session(response: flask.Response) -> flask.Response:
        flask.session["foo"] = 42
        return response

    @app.route("/")
    def flask_dump_session_contents() -> str:
        return repr(flask.session.get("foo"))

    assert client.get("/").data == b"None"
    assert client.get("/").data == b"42"


def test_session_special_types(make_app: AppFactory) -> None:
    app, _ = make_app()
    client = app.test_client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    the_uuid = uuid.uuid4()

    @app.route("/")
    def flask_dump_session_contents() -> Any:
        flask.session["t"] = (1, 2, 3)
        flask.session["b"] = b"\xff"
        flask.session["m"] = Markup("<html>")
        flask.session["u"] = the_uuid
        flask.session["d"] = now
        flask.session["t_tag"] = {" t": "not-a-tuple"}
        flask.session["di_t_tag"] = {" t__": "not-a-tuple"}
        flask.session["di_tag"] = {" di": "not-a-dict"}
        return "", 204

    with client:
        client.get("/")
        client.get("/untouched")  # the session of a later request, loaded from DynamoDB
        s = flask.session
        assert s["t"] == (1, 2, 3)
        assert type(s["b"]) is bytes
        assert s["b"] == b"\xff"
        assert type(s["m"]) is Markup
        assert s["m"] == Markup("<html>")
        assert s["u"] == the_uuid
        assert s["d"] == now
        assert s["t_tag"] == {" t": "not-a-tuple"}
        assert s["di_t_tag"] == {" t__": "not-a-tuple"}
        assert s["di_tag"] == {" di": "not-a-dict"}


def test_modified_stays_true_for_the_rest_of_a_request_that_wrote(make_app: AppFactory) -> None:
    # Not one of Flask's tests: what test_session_accessed checks of ``modified``, on every
    # Flask version, and for a change made inside a value too.
    app, _ = make_app()
    seen = []

    @app.teardown_request
    def after_the_save(_: BaseException | None) -> None:
        seen.append(flask.session.modified)

    client = app.test_client()
    client.get("/set?a=1")
    client.get("/get")
    client.get("/append/cart/book")
    client.get("/append/cart/pen")

    assert seen == [True, False, True, True]
