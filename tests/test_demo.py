"""The demo shop in examples/: its routes through Flask's test client, and serve.py as the
process a user would start."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dynamodb_session_flask import create_table
from examples.app import MAX_USER_LENGTH, create_app

from .engines import REPO_ROOT, LocalEngine, engine_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SERVE_SCRIPT = REPO_ROOT / "examples" / "serve.py"
LOGIN_FORM = 'action="/login"'
SERVE_READY_TIMEOUT = 60.0
SERVE_STOP_TIMEOUT = 15.0


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


@pytest.fixture
def app(engine: LocalEngine, demo_table: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
            "SESSION_DYNAMODB_TABLE_NAME": demo_table,
        }
    )


def stored_sessions(client: DynamoDBClient, table_name: str) -> int:
    return client.scan(TableName=table_name, Select="COUNT", ConsistentRead=True)["Count"]


def session_cookie(app: Flask, client: FlaskClient) -> str | None:
    cookie = client.get_cookie(app.session_interface.get_cookie_name(app))
    return None if cookie is None else cookie.value


def page(client: FlaskClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


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
    assert stored_sessions(demo_client, demo_table) == 0


def test_login_shows_user_and_times(app: Flask) -> None:
    client = app.test_client()
    post(client, "/login", user="alice")
    html = page(client)
    assert '<strong id="user">alice</strong>' in html
    assert LOGIN_FORM not in html
    assert 'action="/logout"' in html
    # The login time and the session's created and expiry times are shown, in UTC.
    assert html.count(" UTC") == 3
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
    assert stored_sessions(demo_client, demo_table) == 1
    assert "<li>apple</li>" in page(client)


def test_cookie_is_not_secure_for_plain_http_demo(app: Flask) -> None:
    response = app.test_client().post("/cart", data={"item": "apple"})
    [header] = response.headers.getlist("Set-Cookie")
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
    assert '<ul id="cart"><li>apple</li><li>pear</li></ul>' in html
    assert stored_sessions(demo_client, demo_table) == 1


def test_logout_shows_login_form_and_deletes_session(
    app: Flask, demo_client: DynamoDBClient, demo_table: str
) -> None:
    client = app.test_client()
    post(client, "/login", user="alice")
    post(client, "/cart", item="apple")
    assert stored_sessions(demo_client, demo_table) == 1

    post(client, "/logout")
    assert session_cookie(app, client) is None
    html = page(client)
    assert LOGIN_FORM in html
    assert "alice" not in html
    assert "Your cart is empty." in html
    assert stored_sessions(demo_client, demo_table) == 0


def test_second_client_does_not_see_first_clients_cart(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    post(first, "/login", user="alice")
    post(first, "/cart", item="apple")
    post(second, "/cart", item="pear")

    html = page(second)
    assert "apple" not in html and "alice" not in html
    assert "<li>pear</li>" in html
    assert "pear" not in page(first)


def test_user_input_is_escaped(app: Flask) -> None:
    client = app.test_client()
    user = '<script>alert("u")</script>'
    item = "<img src=x onerror=alert(1)>&"
    post(client, "/login", user=user)
    post(client, "/cart", item=item)
    html = page(client)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;" in html
    assert "<li>&lt;img src=x onerror=alert(1)&gt;&amp;</li>" in html


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
    assert stored_sessions(demo_client, demo_table) == 0


def test_longest_allowed_user_name_is_accepted(app: Flask) -> None:
    client = app.test_client()
    post(client, "/login", user="x" * MAX_USER_LENGTH)
    assert "x" * MAX_USER_LENGTH in page(client)


# -- examples/serve.py as a process -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(
    opener: urllib.request.OpenerDirector, url: str, form: dict[str, str] | None = None
) -> str:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    with opener.open(url, data=data, timeout=10) as response:
        assert response.status == 200
        body: bytes = response.read()
        return body.decode("utf-8")


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVE_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve.py exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail(f"serve.py did not answer {url} in {SERVE_READY_TIMEOUT:.0f} s:\n{log.read_text()}")


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
        assert "<li>apple</li>" in html
        assert len(cookies) == 1

        # A client without the cookie gets a fresh page.
        assert LOGIN_FORM in fetch(urllib.request.build_opener(), url)

        if backend == "endpoint":
            assert stored_sessions(demo_client, table_name) == 1

        proc.terminate()  # SIGTERM: serve.py stops its embedded moto and exits cleanly
        assert proc.wait(timeout=SERVE_STOP_TIMEOUT) == 0, log.read_text()
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
