"""Helpers many test modules share: what a response does with the id cookie, a clock the
test controls, and which tests need dynalite."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from werkzeug.http import parse_cookie

from dynamodb_session_flask import DynamoDbSession

from .engines import NPM_INSTALL_COMMAND, dynalite_available

#: The id cookie's name under ``SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME`` (the default).
COOKIE = "id"
#: How werkzeug writes the date of an expired cookie.
EPOCH_EXPIRES = "Expires=Thu, 01 Jan 1970"


def _set_cookie_headers(response: Any) -> list[str]:
    """The ``Set-Cookie`` headers of a Flask test response, or of anything with a
    ``set_cookies`` list (the live server's replies)."""
    headers = getattr(response, "set_cookies", None)
    if headers is None:
        headers = response.headers.getlist("Set-Cookie")
    return list(headers)


def cookie_id(response: Any, name: str = COOKIE) -> str | None:
    """The value the response gives the id cookie (``""`` when it expires it), ``None``
    when it sets none."""
    for header in _set_cookie_headers(response):
        parsed = parse_cookie(header)
        if name in parsed:
            return parsed[name]
    return None


def expires_cookie(response: Any, name: str = COOKIE) -> bool:
    """Whether the response tells the browser to forget the id cookie: an empty value
    dated at the epoch, with the attributes it was set with."""
    return any(
        parse_cookie(header).get(name) == "" and EPOCH_EXPIRES in header
        for header in _set_cookie_headers(response)
    )


class FrozenClockSession(DynamoDbSession):
    """The interface with its one clock under the test's control."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def freeze_clock(app: Flask, like: FrozenClockSession | None = None) -> FrozenClockSession:
    """Give ``app`` an interface on the same client whose clock the test moves; ``like``
    starts it at another frozen clock's time (a redeployed app next to the first)."""
    clock = FrozenClockSession(client=app.session_interface._client)  # type: ignore[attr-defined]
    if like is not None:
        clock.current = like.current
    app.session_interface = clock
    return clock


def _running_on_dynalite() -> bool:
    return os.environ.get("DYNAMODB_ENGINE", "moto") == "dynalite"


def require_dynalite() -> None:
    """For a test that starts dynalite itself. On a moto run without dynalite it skips
    (docs/developing.md lists these tests); when the run is on dynalite a missing dynalite is a
    failure, so an incomplete install can never pass for a green run."""
    if dynalite_available():
        return
    message = f"dynalite is not installed; run `{NPM_INSTALL_COMMAND}`"
    if _running_on_dynalite():
        pytest.fail(f"{message} (DYNAMODB_ENGINE=dynalite)", pytrace=False)
    pytest.skip(message)
