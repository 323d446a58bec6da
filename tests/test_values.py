"""Values round-trip as they do in Flask's own session; changes are saved as deltas."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask, session
from markupsafe import Markup

from .conftest import AppFactory

VALUES: dict[str, Any] = {
    "str": "héllo ✓",
    "int": 42,
    "big": 2**62,
    "float": 1.5,
    "true": True,
    "none": None,
    "list": [1, "two", [3.0]],
    "dict": {"a": {"b": [1, 2]}, " di": "tagged-looking key"},
    "tuple": (1, "a", (2,)),
    "bytes": b"\x00\xffbinary",
    "datetime": datetime(2026, 11, 26, 10, 30, 15, tzinfo=timezone.utc),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "markup": Markup("<b>bold</b>"),
    "empty": "",
}


def test_values_round_trip_unchanged(make_app: AppFactory) -> None:
    app, _ = make_app()
    seen: dict[str, Any] = {}

    @app.route("/store")
    def store() -> str:
        session.update(VALUES)
        return "ok"

    @app.route("/read")
    def read() -> str:
        seen.update(session)
        return "ok"

    client = app.test_client()
    client.get("/store")
    client.get("/read")
    assert seen == VALUES
    assert {k: type(v) for k, v in seen.items()} == {k: type(v) for k, v in VALUES.items()}


def test_unserializable_value_names_the_key_and_keeps_the_stored_session(
    make_app: AppFactory,
) -> None:
    app, _ = make_app()

    @app.route("/bad")
    def bad() -> str:
        session["a"] = "changed"
        session["broken"] = object()
        return "ok"

    client = app.test_client()
    client.get("/set?a=1")
    with pytest.raises(TypeError, match="'broken'"):
        client.get("/bad")
    assert client.get("/get").json == {"a": "1"}


def test_concurrent_changes_to_different_keys_both_survive(make_app: AppFactory) -> None:
    app, _ = make_app()
    both_loaded = threading.Barrier(2)

    @app.route("/slow-set/<key>")
    def slow_set(key: str) -> str:
        session[key] = key
        both_loaded.wait(timeout=10)
        return "ok"

    client = app.test_client()
    client.get("/set?base=1")
    cookie = client.get_cookie("id")
    assert cookie is not None

    def request(key: str) -> None:
        other = app.test_client()
        other.set_cookie("id", cookie.value)
        other.get(f"/slow-set/{key}")

    threads = [threading.Thread(target=request, args=(key,)) for key in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert client.get("/get").json == {"base": "1", "left": "left", "right": "right"}


def test_session_keys_must_be_strings(app_and_calls) -> None:
    app: Flask = app_and_calls[0]

    @app.route("/int-key")
    def int_key() -> str:
        session[1] = "x"  # type: ignore[index]
        return "ok"

    with pytest.raises(TypeError, match="non-empty strings"):
        app.test_client().get("/int-key")
