"""A newcomer's first hour: the README's Quick start as printed, the demo when something
is wrong (a taken port, a missing table), the package's extras, and the commands' output
when it is not a terminal."""

from __future__ import annotations

import re

from flask import Flask

import dynamodb_session_flask

from .engines import REPO_ROOT, LocalEngine

README = REPO_ROOT / "README.md"
SERVE_SCRIPT = REPO_ROOT / "examples" / "serve.py"


def quick_start_app() -> Flask:
    """The first Python block of the README's Quick start, run as printed."""
    section = README.read_text().split("## Quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {"__name__": __name__}
    exec(compile(code.group(1), "README.md (Quick start)", "exec"), namespace)
    app = namespace["flask_app"]
    assert isinstance(app, Flask)
    return app


def test_the_quick_start_install_line_installs_version_2() -> None:
    section = README.read_text().split("## Quick start", 1)[1]
    assert 'pip install "dynamodb-session-flask>=2"' in section
    assert dynamodb_session_flask.__version__.startswith("2.")


def test_the_quick_start_load_answers_after_end(engine: LocalEngine, table_name: str) -> None:
    app = quick_start_app()
    app.config.update(
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    client = app.test_client()
    assert client.get("/save").status_code == 200
    assert client.get("/load").text == "My Value"
    assert client.get("/end").status_code == 200
    after = client.get("/load")
    assert after.status_code == 200
