"""The session id travels in a cookie with OWASP's defaults, overridable as SPEC.md says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.http import parse_cookie

from .conftest import AppFactory


def set_cookie_header(response) -> str:
    [header] = response.headers.getlist("Set-Cookie")
    return header


def attributes(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";")]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


def test_defaults_are_owasp_recommendations(make_app: AppFactory) -> None:
    # SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE left at its default (True).
    app, _ = make_app(SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=True)
    header = set_cookie_header(app.test_client().get("/set?val=x"))
    attrs = attributes(header)

    assert header.startswith("id=")
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["samesite"] == "Strict"
    assert attrs["path"] == "/"
    assert "domain" not in attrs


def test_id_is_43_characters_unsigned(app_and_calls) -> None:
    app, _ = app_and_calls
    header = set_cookie_header(app.test_client().get("/set?val=x"))
    assert len(parse_cookie(header)["id"]) == 43


def test_flask_cookie_name_used_without_override(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME=False, SESSION_COOKIE_NAME="sess")
    client = app.test_client()
    assert set_cookie_header(client.get("/set?val=x")).startswith("sess=")
    assert client.get("/get").json == {"val": "x"}


def test_flask_secure_setting_used_without_override(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False, SESSION_COOKIE_SECURE=True)
    assert "secure" in attributes(set_cookie_header(app.test_client().get("/set?val=x")))

    app, _ = make_app(SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False)
    assert "secure" not in attributes(set_cookie_header(app.test_client().get("/set?val=x")))


@pytest.mark.parametrize("samesite", ["Lax", "None"])
def test_explicit_samesite_is_kept(make_app: AppFactory, samesite: str) -> None:
    app, _ = make_app(SESSION_COOKIE_SAMESITE=samesite)
    attrs = attributes(set_cookie_header(app.test_client().get("/set?val=x")))
    assert attrs["samesite"] == samesite


def test_domain_path_and_httponly_come_from_flask(make_app: AppFactory) -> None:
    app, _ = make_app(
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_PATH="/shop",
        SESSION_COOKIE_HTTPONLY=False,
    )
    attrs = attributes(
        set_cookie_header(app.test_client().get("/set?val=x", base_url="http://example.test"))
    )
    assert attrs["domain"] == "example.test"
    assert attrs["path"] == "/shop"
    assert "httponly" not in attrs


def test_cookie_expires_with_the_session(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=600)
    before = datetime.now(timezone.utc)
    attrs = attributes(set_cookie_header(app.test_client().get("/set?val=x")))
    expires = datetime.strptime(attrs["expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(
        tzinfo=timezone.utc
    )
    assert before + timedelta(seconds=598) <= expires <= before + timedelta(seconds=602)


def test_header_id_ignored_in_cookie_mode(app_and_calls) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    sid = parse_cookie(set_cookie_header(client.get("/set?val=x")))["id"]
    calls.clear()

    other = app.test_client()
    response = other.get("/get", headers={"x-id": sid})

    assert response.json == {}
    assert calls.total() == 0


def test_host_prefixed_cookie_name_works(make_app: AppFactory) -> None:
    """ASVS 3.4.4: a ``__Host-`` cookie must be Secure, have Path=/ and no Domain, so
    browsers only ever send it back to the host that set it."""
    app, _ = make_app(
        SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME=False,
        SESSION_COOKIE_NAME="__Host-id",
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=True,
    )
    client = app.test_client()
    header = set_cookie_header(client.get("https://localhost/set?val=x"))
    attrs = attributes(header)

    assert header.startswith("__Host-id=")
    assert "secure" in attrs and attrs["path"] == "/" and "domain" not in attrs
    assert client.get("https://localhost/get").json == {"val": "x"}
    logout = client.get("https://localhost/clear")
    assert set_cookie_header(logout).startswith("__Host-id=;")


@pytest.mark.parametrize("name", ["id", "session", "x-id"])
def test_id_in_the_url_is_never_accepted(app_and_calls, name: str) -> None:
    """ASVS 3.1.1: ids travel only in the cookie (or the configured header)."""
    app, calls = app_and_calls
    sid = parse_cookie(set_cookie_header(app.test_client().get("/set?val=x")))["id"]
    calls.clear()

    response = app.test_client().get(f"/get?{name}={sid}")

    assert response.json == {}
    assert calls.total() == 0
