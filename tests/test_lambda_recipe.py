"""The AWS Lambda recipe as shipped: ``examples/lambda_function.py`` uses the library's
timeouts and warms its connection at init, and ``make lambda-local``'s script runs it on
the sample API Gateway event in ``examples/events``."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask

from dynamodb_session_flask import DynamoDbSession, create_table

from .conftest import CountingSession, error_lines
from .engines import REPO_ROOT, LocalEngine

INVOKE_SCRIPT = REPO_ROOT / "examples" / "invoke_lambda.py"
EVENT = REPO_ROOT / "examples" / "events" / "http-api-get-visits.json"


@pytest.fixture
def recipe(
    engine: LocalEngine, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The function module, imported as Lambda's init phase would, on this test's table."""
    monkeypatch.setenv("SESSION_TABLE_NAME", table_name)
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", engine.endpoint_url)
    sys.modules.pop("examples.lambda_function", None)
    yield importlib.import_module("examples.lambda_function")
    sys.modules.pop("examples.lambda_function", None)


def test_the_recipe_uses_the_librarys_timeouts(recipe: ModuleType) -> None:
    app = recipe.app
    config = app.session_interface.context(app).store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_the_recipe_serves_the_sample_event(recipe: ModuleType) -> None:
    event = json.loads(EVENT.read_text())
    first = recipe.lambda_handler(event, None)
    assert (first["statusCode"], json.loads(first["body"])) == (200, {"visits": 1})
    cookie = first["cookies"][0].split(";", 1)[0]
    second = recipe.lambda_handler({**event, "cookies": [cookie]}, None)
    assert json.loads(second["body"]) == {"visits": 2}


def test_warm_up_makes_one_read_at_start_up(engine: LocalEngine, table_name: str) -> None:
    counting = CountingSession()
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url, SESSION_DYNAMODB_TABLE_NAME=table_name
    )
    DynamoDbSession(boto3_session=counting.session).init_app(app, warm_up=True)
    assert (counting.clients, counting.calls) == (1, 1)


def test_warm_up_names_a_missing_table_at_start_up(
    engine: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url,
        SESSION_DYNAMODB_TABLE_NAME="no-such-table",
    )
    with caplog.at_level(logging.WARNING, logger="dynamodb_session_flask"):
        DynamoDbSession().init_app(app, warm_up=True)  # starts all the same
    [line] = error_lines(caplog)
    assert "table 'no-such-table' not found" in line
    assert "`flask dynamodb-session create-table`" in line


def test_the_handler_runs_locally_in_one_line(
    engine: LocalEngine, admin_client, tmp_path: Path
) -> None:
    table = f"lambda-{uuid.uuid4().hex[:12]}"
    create_table(table, client=admin_client)
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": engine.endpoint_url, "SESSION_TABLE_NAME": table}
    try:
        done = subprocess.run(
            [sys.executable, str(INVOKE_SCRIPT), str(EVENT)],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        admin_client.delete_table(TableName=table)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [json.loads(a["body"]) for a in answers] == [{"visits": 1}, {"visits": 2}]
    for answer in answers:
        [cookie] = answer["cookies"]
        assert re.match(r"id=<43 characters>; ", cookie), "the id itself is never printed"
