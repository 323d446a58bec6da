"""Setup mistakes are named, in one line that says what to do: at start-up where they can
be known then (``init_app``), otherwise in the ERROR line logged with the request's 503
and in the ``flask dynamodb-session`` commands. None of them passes for an outage."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, session

from dynamodb_session_flask import ConfigError, DynamoDbSession

from .conftest import AppFactory, error_lines
from .engines import REPO_ROOT, LocalEngine, engine_client
from .test_cli import failed, run

LOGGER = "dynamodb_session_flask"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def visit_app(engine: LocalEngine, table_name: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url, SESSION_DYNAMODB_TABLE_NAME=table_name
    )

    @app.route("/visit")
    def visit() -> str:
        session["visits"] = 1
        return "visited"

    return app


def assert_named_everywhere(
    app: Flask, caplog: pytest.LogCaptureFixture, words: str, advice: str
) -> None:
    """At start-up (a warning), with the request's 503 (an ERROR line) and in the CLI."""
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DynamoDbSession().init_app(app)
    [warning] = [line for line in warnings_of(caplog) if words in line]
    assert advice in warning

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert app.test_client().get("/visit").status_code == 503
    [line] = error_lines(caplog)
    assert words in line and advice in line, line
    assert "cannot reach" not in line

    cli_line = failed(run(app, "stats"))
    assert words in cli_line and advice in cli_line, cli_line


def test_no_region_is_named(
    engine: LocalEngine,
    table_name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    assert_named_everywhere(
        visit_app(engine, table_name), caplog, "no AWS region is configured", "set AWS_REGION"
    )


def test_no_credentials_are_named(
    engine: LocalEngine,
    table_name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert_named_everywhere(
        visit_app(engine, table_name), caplog, "no AWS credentials found", "AWS_ACCESS_KEY_ID"
    )


def test_a_missing_table_at_request_time_logs_the_create_table_hint(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME="no-such-table")
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert app.test_client().get("/set?a=1").status_code == 503
    [line] = error_lines(caplog)
    assert "table 'no-such-table' not found" in line
    assert "`flask dynamodb-session create-table`" in line


def test_an_endpoint_without_a_scheme_is_named_at_start_up() -> None:
    app = Flask(__name__)
    app.config.update(SESSION_DYNAMODB_ENDPOINT_URL="localhost:8000")
    with pytest.raises(ConfigError) as raised:
        DynamoDbSession().init_app(app)
    assert raised.value.setting == "SESSION_DYNAMODB_ENDPOINT_URL"
    assert "did you mean http://localhost:8000?" in str(raised.value)


@pytest.mark.parametrize("init_app", [True, False], ids=["init_app", "interface-only"])
def test_an_endpoint_without_a_scheme_is_one_line_in_the_cli(
    tmp_path: Path, init_app: bool
) -> None:
    install = (
        "DynamoDbSession().init_app(app)"
        if init_app
        else "app.session_interface = DynamoDbSession()"
    )
    (tmp_path / "schemeless.py").write_text(
        textwrap.dedent(
            f"""
            from flask import Flask
            from dynamodb_session_flask import DynamoDbSession

            app = Flask(__name__)
            app.config.update(SESSION_DYNAMODB_ENDPOINT_URL="localhost:8000")
            {install}
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("FLASK_APP", None)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "schemeless", "dynamodb-session", "stats"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: SESSION_DYNAMODB_ENDPOINT_URL: must be an http:// or https:// URL or None, "
        "got 'localhost:8000' (did you mean http://localhost:8000?)"
    ]


@pytest.mark.parametrize(
    ("config", "source"),
    [
        ({"PERMANENT_SESSION_LIFETIME": timedelta(hours=1)}, "PERMANENT_SESSION_LIFETIME"),
        ({"SESSION_DYNAMODB_ABSOLUTE_TIMEOUT": 3600}, "SESSION_DYNAMODB_ABSOLUTE_TIMEOUT"),
    ],
)
def test_an_idle_timeout_longer_than_the_absolute_one_is_a_warning(
    caplog: pytest.LogCaptureFixture, config: dict[str, object], source: str
) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DynamoDbSession().init_app(app)  # starts: the absolute timeout simply decides
    [warning] = warnings_of(caplog)
    assert warning.startswith(
        "SESSION_DYNAMODB_IDLE_TIMEOUT (7200 s) is longer than the absolute timeout "
        f"(3600 s, from {source})"
    )
    assert "Set SESSION_DYNAMODB_IDLE_TIMEOUT to at most 3600" in warning


def test_an_idle_timeout_within_the_absolute_one_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    app.config.update(SESSION_DYNAMODB_ABSOLUTE_TIMEOUT=7200)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DynamoDbSession().init_app(app)
    assert warnings_of(caplog) == []


def test_a_client_and_a_different_endpoint_setting_are_refused(engine: LocalEngine) -> None:
    app = Flask(__name__)
    app.config.update(SESSION_DYNAMODB_ENDPOINT_URL="http://127.0.0.1:1")
    with pytest.raises(ConfigError) as raised:
        DynamoDbSession(client=engine_client(engine.endpoint_url)).init_app(app)
    assert raised.value.setting == "SESSION_DYNAMODB_ENDPOINT_URL"
    assert "DynamoDbSession(client=...)" in str(raised.value)
    assert engine.endpoint_url in str(raised.value)


def test_a_client_and_the_same_endpoint_setting_are_accepted(engine: LocalEngine) -> None:
    app = Flask(__name__)
    app.config.update(SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url)
    DynamoDbSession(client=engine_client(engine.endpoint_url)).init_app(app)
