"""The demo's "Your devices" panel (examples/devices.py): two browsers logged in as the same
user see each other and can end each other."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dynamodb_session_flask import create_table
from examples.app import create_app
from examples.devices import browser

from .engines import LocalEngine

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
ROW = re.compile(
    r'<tr class="device( current)?">\s*<td title="[^"]*">\s*([^<]+?)\s*(?:<strong>|</td>)'
    r'.*?action="/devices/end/([A-Za-z0-9_\-]+)"',
    re.S,
)


@pytest.fixture
def demo_app(engine: LocalEngine, admin_client) -> Iterator[Flask]:
    name = f"devices-{uuid.uuid4().hex[:12]}"
    create_table(name, client=admin_client)
    yield create_app(
        {
            "TESTING": True,
            "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
            "SESSION_DYNAMODB_TABLE_NAME": name,
        }
    )
    admin_client.delete_table(TableName=name)


def visit(app: Flask, user_agent: str, user: str | None = None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    if user is not None:
        assert client.post("/login", data={"user": user}).status_code == 303
    return client


def rows(client: FlaskClient, expected: int | None = None) -> list[tuple[str, bool, str]]:
    """(browser, current, handle) of each row of the panel; polled until ``expected``
    rows show, since the per-user index may trail by a moment."""
    deadline = time.monotonic() + 5
    while True:
        response = client.get("/")
        assert response.status_code == 200
        found = [
            (name, bool(current), handle)
            for current, name, handle in ROW.findall(response.get_data(as_text=True))
        ]
        if expected is None or len(found) == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def logged_in(client: FlaskClient) -> bool:
    return 'action="/login"' not in client.get("/").get_data(as_text=True)


def test_two_browsers_see_each_other_and_one_ends_the_other(demo_app: Flask) -> None:
    laptop = visit(demo_app, FIREFOX_LINUX, "alice")
    phone = visit(demo_app, SAFARI_IPHONE, "alice")

    seen_by_laptop = rows(laptop, expected=2)
    seen_by_phone = rows(phone, expected=2)

    assert {(name, current) for name, current, _ in seen_by_laptop} == {
        ("Firefox on Linux", True),
        ("Safari on iPhone", False),
    }
    assert {(name, current) for name, current, _ in seen_by_phone} == {
        ("Firefox on Linux", False),
        ("Safari on iPhone", True),
    }
    assert {handle for *_, handle in seen_by_laptop} == {handle for *_, handle in seen_by_phone}
    html = laptop.get("/").get_data(as_text=True)
    assert "Log out other devices" in html
    assert laptop.get_cookie("id").value not in html

    phone_handle = next(handle for name, _, handle in seen_by_laptop if "iPhone" in name)
    response = laptop.post(f"/devices/end/{phone_handle}")

    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert not logged_in(phone)
    assert logged_in(laptop)
    assert [(name, current) for name, current, _ in rows(laptop)] == [("Firefox on Linux", True)]
    assert "Log out other devices" not in laptop.get("/").get_data(as_text=True)


def test_log_out_other_devices_spares_this_one_and_other_users(demo_app: Flask) -> None:
    here = visit(demo_app, FIREFOX_LINUX, "alice")
    others = [visit(demo_app, SAFARI_IPHONE, "alice"), visit(demo_app, CHROME_WINDOWS, "alice")]
    bob = visit(demo_app, CHROME_WINDOWS, "bob")
    rows(here, expected=3)

    assert here.post("/devices/end-others").status_code == 303

    assert logged_in(here) and logged_in(bob)
    assert not any(logged_in(client) for client in others)
    assert len(rows(here)) == 1


def test_another_users_device_cannot_be_ended(demo_app: Flask) -> None:
    alice = visit(demo_app, FIREFOX_LINUX, "alice")
    bob = visit(demo_app, SAFARI_IPHONE, "bob")
    ((_, _, bobs_handle),) = rows(bob, expected=1)
    rows(alice, expected=1)

    alice.post(f"/devices/end/{bobs_handle}")

    assert logged_in(bob)


def test_visitors_and_logged_out_users_see_no_panel(demo_app: Flask) -> None:
    visitor = visit(demo_app, FIREFOX_LINUX)
    assert 'id="devices"' not in visitor.get("/").get_data(as_text=True)

    alice = visit(demo_app, FIREFOX_LINUX, "alice")
    rows(alice, expected=1)
    alice.post("/logout")
    assert 'id="devices"' not in alice.get("/").get_data(as_text=True)


def test_the_shop_works_and_the_panel_explains_without_the_index(
    engine: LocalEngine, admin_client
) -> None:
    name = f"devices-{uuid.uuid4().hex[:12]}"
    create_table(name, client=admin_client, user_index=False)
    try:
        app = create_app(
            {
                "TESTING": True,
                "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
                "SESSION_DYNAMODB_TABLE_NAME": name,
            }
        )
        client = visit(app, FIREFOX_LINUX, "alice")
        html = client.get("/").get_data(as_text=True)
        assert '<strong id="user">alice</strong>' in html
        assert "flask dynamodb-session add-user-index" in html
    finally:
        admin_client.delete_table(TableName=name)


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (CHROME_WINDOWS, "Chrome on Windows"),
        (None, "Unknown browser"),
        ("curl/8.5.0", "curl/8.5.0"),
    ],
)
def test_browser_names(user_agent: str | None, shown: str) -> None:
    assert browser(user_agent) == shown
