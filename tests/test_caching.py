"""Shared caches (CDNs, proxies): public pages stay cacheable, and nothing carrying or
ending a session id is ever stored by them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, session
from werkzeug.http import parse_cookie

from .conftest import AppFactory
from .support import expires_cookie


def add_public_page(app: Flask) -> None:
    @app.route("/public")
    def public() -> Any:
        """A page the application asks shared caches to keep."""
        response = app.make_response("catalogue")
        response.cache_control.public = True
        response.cache_control.max_age = 600
        response.cache_control.s_maxage = 3600
        return response

    @app.route("/public-login")
    def public_login() -> Any:
        session["user"] = "alice"
        return public()


def test_page_that_never_uses_the_session_has_no_vary_cookie(make_app: AppFactory) -> None:
    app, calls = make_app()
    add_public_page(app)
    response = app.test_client().get("/public")

    assert "Vary" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert response.cache_control.public
    assert calls.total() == 0


def test_page_that_reads_the_session_varies_by_cookie(make_app: AppFactory) -> None:
    app, _ = make_app()
    response = app.test_client().get("/get")
    assert "Cookie" in response.vary


@pytest.mark.parametrize("use_header", [False, True])
def test_response_carrying_an_id_is_never_stored_by_a_shared_cache(
    make_app: AppFactory, use_header: bool
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USE_HEADER=use_header)
    add_public_page(app)
    response = app.test_client().get("/public-login")

    assert parse_cookie(response.headers["Set-Cookie"])["id"]
    if use_header:
        assert response.headers["x-id"]
        assert "x-id" in response.vary
    cache_control = response.cache_control
    assert cache_control.private and not cache_control.public
    assert cache_control.s_maxage is None
    assert cache_control.max_age == 600, "the browser may still cache it as the app said"


def test_response_ending_a_session_is_never_stored_by_a_shared_cache(
    make_app: AppFactory,
) -> None:
    app, _ = make_app()
    client = app.test_client()
    client.get("/set?a=1")
    response = client.get("/clear")

    assert expires_cookie(response)
    assert response.cache_control.private
