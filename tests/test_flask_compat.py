"""Flask's own session tests (tests/test_basic.py in Flask's repository), run against this
session interface: what an application written for Flask's cookie session expects."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import flask
from markupsafe import Markup

from .conftest import AppFactory


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
