"""The demo shop in examples/: its routes through Flask's test client, and serve.py as the
process a user would start."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dynamodb_session_flask import create_table
from examples.app import MAX_USER_LENGTH, create_app

from .conftest import item_count
from .engines import REPO_ROOT, LocalEngine, engine_client, free_port
from .servers import stop, wait_until_serving

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SERVE_SCRIPT = REPO_ROOT / "examples" / "serve.py"
LOGIN_FORM = 'action="/login"'


@pytest.fixture(scope="module")
def demo_client(engine: LocalEngine) -> Iterator[DynamoDBClient]:
    """The tests' own client, for creating tables and looking into them."""
    client = engine_client(engine.endpoint_url)
    yield client
    client.close()


@pytest.fixture
def demo_table(demo_client: DynamoDBClient) -> Iterator[str]:
    name = f"demo-{uuid.uuid4().hex[:12]}"
    create_table(name, client=demo_client)
    yield name
    demo_client.delete_table(TableName=name)


def demo_config(engine: LocalEngine, table: str, cost_log: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
        "SESSION_DYNAMODB_TABLE_NAME": table,
        "DEMO_COST_LOG": str(cost_log),
    }


@pytest.fixture
def app(engine: LocalEngine, demo_table: str, tmp_path: Path) -> Flask:
    return create_app(demo_config(engine, demo_table, tmp_path / "costs.sqlite3"))


def session_cookie(app: Flask, client: FlaskClient) -> str | None:
    cookie = client.get_cookie(app.session_interface.get_cookie_name(app))
    return None if cookie is None else cookie.value


def page(client: FlaskClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def cart_items(html: str) -> list[str]:
    """The cart's items as the page shows them (HTML-escaped)."""
    return re.findall(r"<li><span>(.*?)</span>", html)


def post(client: FlaskClient, path: str, **form: str) -> TestResponse:
    response = client.post(path, data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"
    return response


def test_first_visit_shows_login_form_and_stores_nothing(
    app: Flask, demo_client: DynamoDBClient, demo_table: str
) -> None:
    client = app.test_client()
    html = page(client)
    assert LOGIN_FORM in html
    assert "Your cart is empty." in html
    assert "No session is stored for you yet." in html
    assert session_cookie(app, client) is None
    assert item_count(demo_client, demo_table) == 0


def test_login_shows_user_and_times(app: Flask) -> None:
    client = app.test_client()
    post(client, "/login", user="alice")
    html = page(client)
    assert '<strong id="user">alice</strong>' in html
    assert LOGIN_FORM not in html
    assert 'action="/logout"' in html
    # The login time and the session's created and expiry times, as ISO 8601 UTC that
    # the page's script shows in the browser's time zone (the browser tests check that).
    times = re.findall(r'<time data-local[^>]* datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"', html)
    assert len(times) == 3
    assert 'id="created"' in html and 'id="expires"' in html


def test_login_regenerates_id_and_keeps_cart(
    app: Flask, demo_client: DynamoDBClient, demo_table: str
) -> None:
    client = app.test_client()
    post(client, "/cart", item="apple")
    before = session_cookie(app, client)
    assert before is not None

    post(client, "/login", user="alice")
    after = session_cookie(app, client)
    assert after is not None and after != before
    # The pre-login record is gone, not merely orphaned.
    assert item_count(demo_client, demo_table) == 1
    assert cart_items(page(client)) == ["apple"]


def test_cookie_is_not_secure_for_plain_http_demo(app: Flask) -> None:
    response = app.test_client().post("/cart", data={"item": "apple"})
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("id=")]
    attributes = {part.strip().split("=", 1)[0].lower() for part in header.split(";")}
    assert "secure" not in attributes
    assert {"httponly", "samesite"} <= attributes


def test_two_items_are_both_in_cart(
    app: Flask, demo_client: DynamoDBClient, demo_table: str
) -> None:
    client = app.test_client()
    post(client, "/cart", item="apple")
    post(client, "/cart", item="pear")
    html = page(client)
    assert cart_items(html) == ["apple", "pear"]
    assert item_count(demo_client, demo_table) == 1


def test_logout_shows_login_form_and_deletes_session(
    app: Flask, demo_client: DynamoDBClient, demo_table: str
) -> None:
    client = app.test_client()
    post(client, "/login", user="alice")
    post(client, "/cart", item="apple")
    assert item_count(demo_client, demo_table) == 1

    post(client, "/logout")
    assert session_cookie(app, client) is None
    html = page(client)
    assert LOGIN_FORM in html
    assert "alice" not in html
    assert "Your cart is empty." in html
    assert item_count(demo_client, demo_table) == 0


def test_second_client_does_not_see_first_clients_cart(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    post(first, "/login", user="alice")
    post(first, "/cart", item="apple")
    post(second, "/cart", item="pear")

    html = page(second)
    assert 'id="user"' not in html and "alice" not in html
    assert cart_items(html) == ["pear"]
    assert "pear" not in page(first)


def test_user_input_is_escaped(app: Flask) -> None:
    client = app.test_client()
    user = '<script>alert("u")</script>'
    item = "<img src=x onerror=alert(1)>&"
    post(client, "/login", user=user)
    post(client, "/cart", item=item)
    html = page(client)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;" in html
    assert cart_items(html) == ["&lt;img src=x onerror=alert(1)&gt;&amp;"]


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/login", {}),
        ("/login", {"user": "   "}),
        ("/login", {"user": "x" * (MAX_USER_LENGTH + 1)}),
        ("/cart", {"item": ""}),
    ],
)
def test_invalid_input_is_rejected_without_storing(
    app: Flask,
    demo_client: DynamoDBClient,
    demo_table: str,
    path: str,
    form: dict[str, str],
) -> None:
    response = app.test_client().post(path, data=form)
    assert response.status_code == 400
    assert item_count(demo_client, demo_table) == 0


def test_longest_allowed_user_name_is_accepted(app: Flask) -> None:
    client = app.test_client()
    post(client, "/login", user="x" * MAX_USER_LENGTH)
    assert "x" * MAX_USER_LENGTH in page(client)


def notice(html: str) -> str | None:
    found = re.search(r'<p class="notice" id="notice" role="status">(.*?)</p>', html)
    return None if found is None else found.group(1)


@pytest.mark.parametrize(
    ("path", "form", "expected"),
    [
        ("/login", {"user": "alice"}, "Welcome, alice!"),
        ("/cart", {"item": "apple"}, "Added “apple” to your cart."),
        ("/logout", {}, "You are logged out"),
    ],
)
def test_each_action_leaves_a_message_shown_exactly_once(
    app: Flask, path: str, form: dict[str, str], expected: str
) -> None:
    client = app.test_client()
    post(client, "/login", user="bob")
    page(client)  # the login's own message
    post(client, path, **form)
    shown = notice(page(client))
    assert shown is not None and shown.startswith(expected)
    assert notice(page(client)) is None


def test_removing_an_item_changes_the_cart_and_says_so(app: Flask) -> None:
    client = app.test_client()
    for item in ("apple", "pear", "plum"):
        post(client, "/cart", item=item)
    post(client, "/cart/remove", position="1")
    html = page(client)
    assert cart_items(html) == ["apple", "plum"]
    assert notice(html) == "Removed “pear” from your cart."
    assert client.post("/cart/remove", data={"position": "7"}).status_code == 400


UNIT_IDS = ("read-units", "write-units")


class Cost(NamedTuple):
    """The cost panel: the previous request, its calls by operation, read and write units."""

    request: str
    calls: dict[str, int]
    read_units: float
    write_units: float


def previous_cost(html: str) -> Cost:
    request_line = re.search(r'<code id="cost-request">(.*?)</code>', html)
    assert request_line is not None, "the page shows no previous request"
    calls = {op: int(n) for op, n in re.findall(r'data-operation="(\w+)">(\d+)</td>', html)}
    read, write = (
        float(found.group(1)) if found else 0.0
        for found in (re.search(rf'id="{name}">([\d.]+)</td>', html) for name in UNIT_IDS)
    )
    return Cost(request_line.group(1), calls, read, write)


def test_cost_panel_shows_what_the_previous_request_cost(app: Flask) -> None:
    client = app.test_client()
    assert 'id="no-cost"' in page(client)

    # A request without a session makes no call.
    assert previous_cost(page(client)) == Cost("GET /", {}, 0, 0)

    post(client, "/cart", item="apple")
    cost = previous_cost(page(client))
    assert (cost.request, cost.calls) == ("POST /cart", {"PutItem": 1})
    assert cost.write_units > 0

    # The page that showed that was itself a read: one GetItem, no write.
    cost = previous_cost(page(client))
    assert (cost.request, cost.calls, cost.write_units) == ("GET /", {"GetItem": 1}, 0)
    assert cost.read_units > 0

    post(client, "/cart", item="pear")
    cost = previous_cost(page(client))
    assert (cost.request, cost.calls) == ("POST /cart", {"GetItem": 1, "UpdateItem": 1})

    post(client, "/logout")
    cost = previous_cost(page(client))
    assert (cost.request, cost.calls) == ("POST /logout", {"DeleteItem": 1})


def test_cost_record_is_shared_by_every_process(
    engine: LocalEngine, demo_table: str, tmp_path: Path
) -> None:
    # Two apps on one cost log stand for two worker processes of one server.
    config = demo_config(engine, demo_table, tmp_path / "shared.sqlite3")
    first, second = create_app(config).test_client(), create_app(config).test_client()
    post(first, "/cart", item="apple")
    for name in ("id", "demo_visitor"):
        cookie = first.get_cookie(name)
        assert cookie is not None
        second.set_cookie(name, cookie.value)
    html = page(second)
    assert cart_items(html) == ["apple"]
    assert previous_cost(html)[:2] == ("POST /cart", {"PutItem": 1})


def test_serving_process_is_shown_only_when_asked(
    engine: LocalEngine, demo_table: str, tmp_path: Path
) -> None:
    config = demo_config(engine, demo_table, tmp_path / "costs.sqlite3")
    quiet = create_app(config).test_client().get("/")
    assert "X-Demo-Worker" not in quiet.headers and 'id="worker"' not in quiet.text

    shown = create_app({**config, "DEMO_SHOW_WORKER": True}).test_client().get("/")
    assert shown.headers["X-Demo-Worker"] == str(os.getpid())
    assert f'<span id="worker">{os.getpid()}</span>' in shown.text


# -- examples/serve.py as a process -------------------------------------------------------


def fetch(
    opener: urllib.request.OpenerDirector, url: str, form: dict[str, str] | None = None
) -> str:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    with opener.open(url, data=data, timeout=10) as response:
        assert response.status == 200
        body: bytes = response.read()
        return body.decode("utf-8")


@pytest.mark.parametrize("backend", ["embedded", "endpoint"])
def test_serve_script_serves_the_shop(
    backend: str, engine: LocalEngine, demo_client: DynamoDBClient, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    # Whatever the developer's shell points the demo at must not leak into the test.
    for key in ("DYNAMODB_ENDPOINT_URL", "DEMO_REAL_DYNAMODB", "DEMO_TABLE_NAME"):
        env.pop(key, None)
    table_name = f"demo-serve-{uuid.uuid4().hex[:12]}"
    if backend == "endpoint":
        env.update(DYNAMODB_ENDPOINT_URL=engine.endpoint_url, DEMO_TABLE_NAME=table_name)

    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        # Another working directory proves the script finds its app module by itself.
        proc = subprocess.Popen(
            [sys.executable, str(SERVE_SCRIPT)],
            cwd=str(tmp_path),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(proc, url, log)

        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        # urllib follows the 303s with a GET, so each call returns the page.
        html = fetch(opener, url + "login", {"user": "alice"})
        assert '<strong id="user">alice</strong>' in html
        html = fetch(opener, url + "cart", {"item": "apple"})
        assert cart_items(html) == ["apple"]
        assert [c.name for c in cookies if c.name == "id"] == ["id"]

        # A client without the cookie gets a fresh page.
        assert LOGIN_FORM in fetch(urllib.request.build_opener(), url)

        if backend == "endpoint":
            assert item_count(demo_client, table_name) == 1

        # SIGTERM: serve.py stops its embedded moto and exits cleanly.
        assert stop(proc) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if backend == "endpoint":
            # serve.py may have died before creating it; don't hide why.
            with contextlib.suppress(demo_client.exceptions.ResourceNotFoundException):
                demo_client.delete_table(TableName=table_name)

    output = log.read_text()
    assert f"http://127.0.0.1:{port}/" in output
    # moto's per-request access log is silenced.
    assert "POST / HTTP" not in output
    assert "Traceback" not in output
