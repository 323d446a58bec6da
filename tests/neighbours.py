"""A pytest plugin that runs another project's own test suite on this package: every Flask
application the suite builds keeps its sessions in DynamoDB, through ``DynamoDbSession``,
on a local engine started for the run.

Used by ``make neighbours`` (``.ci/neighbours``) on the released sources of Flask,
Flask-Login and Flask-WTF::

    PYTHONPATH=/path/to/this/repo python -m pytest -p tests.neighbours --neighbour flask

Tests that fail only where this package differs from Flask's cookie session by design are
skipped by name, each with its reason (``SKIPPED`` below); a name that no longer matches a
test is an error, so the list cannot go stale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import flask
import pytest
from werkzeug.datastructures import ImmutableDict

from dynamodb_session_flask import DynamoDbSession, create_table

from .engines import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, REGION, LocalEngine, start_engine

# Tests of each suite that cannot pass on a server-side session, by name, with the reason.
BY_DESIGN_COOKIE_NAME = (
    "by design: the cookie is named 'id' (OWASP's non-descript name), not Flask's 'session'"
)
BY_DESIGN_SAMESITE = "by design: SameSite defaults to Strict, where Flask sets none"
BY_DESIGN_NO_SECRET_KEY = (
    "by design: ids are random references, not signed data, so sessions need no SECRET_KEY"
    " and do not change with it"
)
BY_DESIGN_TIMEOUTS = (
    "by design: the cookie expires with the idle and absolute timeouts (2 h, 12 h), sooner"
    " than Flask's 31-day PERMANENT_SESSION_LIFETIME"
)
BY_DESIGN_SLIDING = (
    "by design: every request that uses the session sends the cookie with the idle"
    " timeout's new expiry, whatever SESSION_REFRESH_EACH_REQUEST says"
)
BY_DESIGN_NO_VARY = (
    "by design: a response that never used the session has no Vary: Cookie, so public"
    " pages stay cacheable (one that does is Cache-Control: private)"
)

SKIPPED: Mapping[str, Mapping[str, str]] = {
    "flask": {
        "tests/test_basic.py::test_session_using_session_settings": BY_DESIGN_COOKIE_NAME,
        "tests/test_basic.py::test_session_using_samesite_attribute": BY_DESIGN_SAMESITE,
        "tests/test_basic.py::test_missing_session": BY_DESIGN_NO_SECRET_KEY,
        "tests/test_testing.py::test_session_transactions_no_null_sessions": (
            BY_DESIGN_NO_SECRET_KEY
        ),
        "tests/test_basic.py::test_session_secret_key_fallbacks": BY_DESIGN_NO_SECRET_KEY,
        "tests/test_basic.py::test_session_expiration": BY_DESIGN_TIMEOUTS,
        "tests/test_basic.py::test_session_cookie_setting": BY_DESIGN_SLIDING,
        "tests/test_basic.py::test_session_refresh_vary": BY_DESIGN_NO_VARY,
    },
    "flask-login": {},
    "flask-wtf": {},
}

TABLE_NAME = "app_session"

_engine: LocalEngine | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--neighbour",
        choices=sorted(SKIPPED),
        required=True,
        help="whose suite this is, for the tests skipped by design",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _engine
    # boto3 needs a region and credentials even for a local engine; never a real account.
    os.environ.update(
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    _engine = start_engine(os.environ.get("DYNAMODB_ENGINE", "moto"))
    client = _engine.client()
    create_table(TABLE_NAME, client=client)
    # Every application, whoever builds it, gets one interface and one client; settings
    # are still read per application from its own config.
    flask.Flask.session_interface = DynamoDbSession(client=client)
    flask.Flask.default_config = ImmutableDict(
        {
            **flask.Flask.default_config,
            "SESSION_DYNAMODB_TABLE_NAME": TABLE_NAME,
            # Their test clients talk plain http, like a development server.
            "SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE": False,
        }
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    global _engine
    if _engine is not None:
        _engine.stop()
        _engine.remove_log()
        _engine = None


def pytest_report_header(config: pytest.Config) -> str:
    endpoint = _engine.endpoint_url if _engine is not None else "?"
    return f"sessions: dynamodb_session_flask.DynamoDbSession on {endpoint}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = SKIPPED[terminalreporter.config.getoption("--neighbour")]
    if skipped:
        terminalreporter.section("skipped by name: where DynamoDbSession differs")
        for nodeid, reason in skipped.items():
            terminalreporter.write_line(f"{nodeid}: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skipped = SKIPPED[config.getoption("--neighbour")]
    found = set()
    for item in items:
        reason = skipped.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
            found.add(item.nodeid)
    missing = sorted(set(skipped) - found)
    whole_suite = config.args_source != pytest.Config.ArgsSource.ARGS
    if missing and whole_suite and not config.getoption("keyword"):
        raise pytest.UsageError(f"tests listed as skipped that no longer exist: {missing}")
