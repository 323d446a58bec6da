"""A newcomer's first hour: the README's Quick start as printed, the demo when something
is wrong (a taken port, a missing table), the package's extras, and the commands' output
when it is not a terminal."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from flask import Flask

import dynamodb_session_flask
from examples.app import create_app

from .engines import REPO_ROOT, LocalEngine
from .test_cli import APP_MODULE, run, succeeded

README = REPO_ROOT / "README.md"
#: The README and the documentation's pages, where the demo's servers are run.
DOCUMENTS = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
SERVE_SCRIPT = REPO_ROOT / "examples" / "serve.py"


INIT_APP = "DynamoDbSession().init_app(app)\n"


def quick_start_app(config: dict[str, object]) -> Flask:
    """The first Python block of the README's Quick start, run as printed, with ``config``
    set where a reader would set it: before ``init_app``, which reads the settings."""
    section = README.read_text().split("## Quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert INIT_APP in code.group(1)
    source = code.group(1).replace(INIT_APP, "app.config.update(config)\n" + INIT_APP, 1)
    namespace: dict[str, object] = {"__name__": __name__, "config": config}
    exec(compile(source, "README.md (Quick start)", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, Flask)
    return app


def test_the_quick_start_install_line_installs_version_2() -> None:
    section = README.read_text().split("## Quick start", 1)[1]
    assert 'pip install "dynamodb-session-flask>=2"' in section
    assert dynamodb_session_flask.__version__.startswith("2.")


def test_the_quick_start_load_answers_after_end(engine: LocalEngine, table_name: str) -> None:
    app = quick_start_app(
        {
            "SESSION_DYNAMODB_TABLE_NAME": table_name,
            "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
            "SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE": False,
        }
    )
    client = app.test_client()
    assert client.get("/save").status_code == 200
    assert client.get("/load").text == "My Value"
    assert client.get("/end").status_code == 200
    after = client.get("/load")
    assert after.status_code == 200


def test_a_taken_port_is_one_line_suggesting_another(engine: LocalEngine, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "PORT": str(port),
            "DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
            "DEMO_TABLE_NAME": f"demo-port-{uuid.uuid4().hex[:12]}",
        }
        done = subprocess.run(
            [sys.executable, str(SERVE_SCRIPT)],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "Demo shop:" not in done.stdout, "no address is printed for a server that is not up"
    [line] = done.stderr.strip().splitlines()
    assert f"Port {port} on 127.0.0.1 is already in use" in line
    assert f"PORT={port + 1} make demo" in line
    tables = engine.client().list_tables()["TableNames"]
    assert env["DEMO_TABLE_NAME"] not in tables, "nothing is started for a port that is taken"


def test_a_failed_login_never_says_welcome(engine: LocalEngine, tmp_path: Path) -> None:
    """No table: the login's save fails. The 503 must not leave a message saying it
    worked, and the cost panel must say the call failed, not that a condition refused it."""
    app = create_app(
        {
            "TESTING": True,
            "SESSION_DYNAMODB_ENDPOINT_URL": engine.endpoint_url,
            "SESSION_DYNAMODB_TABLE_NAME": "no-such-table",
            "DEMO_COST_LOG": str(tmp_path / "costs.sqlite3"),
        }
    )
    client = app.test_client()
    client.get("/")  # the visitor cookie, for the cost panel
    assert client.post("/login", data={"user": "alice"}).status_code == 503

    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Welcome" not in html
    assert "Refused by a condition" not in html
    assert re.search(
        r"Failed \(DynamoDB answered an error.*PutItem: ResourceNotFoundException", html, re.S
    )


def test_the_demo_extra_has_the_servers_the_readme_runs() -> None:
    block = re.search(
        r"^demo = \[(.*?)^\]", (REPO_ROOT / "pyproject.toml").read_text(), re.S | re.M
    )
    assert block is not None
    demo = {
        re.split(r"[<>=\[]", requirement, maxsplit=1)[0].lower()
        for requirement in re.findall(r'"([^"]+)"', block.group(1))
    }
    for document in DOCUMENTS:
        text = document.read_text()
        for server in ("gunicorn", "waitress"):
            if re.search(rf"`(?:[\w./]*/)?{server} ", text):
                assert server in demo, f"{document.name} runs {server}; `make demo` must install it"


@pytest.mark.parametrize("command", ["stats", "purge-expired"])
def test_progress_is_not_printed_when_not_on_a_terminal(make_app, command: str) -> None:
    app, calls = make_app()
    output = succeeded(run(app, command))
    assert "Scanning" not in output and "Purging" not in output
    assert calls["DescribeTable"] == 0


def test_progress_is_shown_on_a_terminal(
    engine: LocalEngine, table_name: str, tmp_path: Path
) -> None:
    pty = pytest.importorskip("pty")
    (tmp_path / "sessionapp.py").write_text(textwrap.dedent(APP_MODULE))
    env = {
        **os.environ,
        "TEST_ENDPOINT": engine.endpoint_url,
        "TEST_TABLE": table_name,
        "PYTHONPATH": str(tmp_path),
    }
    env.pop("FLASK_APP", None)
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "sessionapp", "dynamodb-session", "stats"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=60,
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"Scanning" in shown
    assert "Scanning" not in done.stdout, "the result alone goes to stdout"
