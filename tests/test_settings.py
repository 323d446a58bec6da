"""Settings: SPEC.md's defaults, and a start-up error naming the key for every bad value."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from dynamodb_session_flask import ConfigError, DynamoDbSession
from dynamodb_session_flask.settings import parse_settings


def test_defaults_match_the_spec() -> None:
    settings = parse_settings({})
    assert settings.absolute_timeout == 43200
    assert settings.idle_timeout == 7200
    assert settings.endpoint_url is None
    assert settings.header_name == "x-id"
    assert settings.sid_byte_length == 32
    assert settings.sid_keys == ()
    assert settings.table_name == "app_session"
    assert settings.override_cookie_name is True
    assert settings.override_cookie_secure is True
    assert settings.use_header is False
    assert settings.consistent_read is True
    assert settings.refresh_interval == 60
    assert settings.compress_threshold == 512
    assert settings.user_id_key == "_user_id"  # Flask-Login's
    assert settings.record_user_agent is True
    assert settings.user_index_name == "user-index"
    assert settings.migrate_v1 is False


def test_flask_defaults_keep_the_absolute_default() -> None:
    assert parse_settings(Flask(__name__).config).absolute_timeout == 43200


@pytest.mark.parametrize(
    ("lifetime", "absolute", "expected"),
    [(timedelta(hours=1), None, 3600), (timedelta(days=31), 600, 600), (120, 600, 120)],
)
def test_permanent_session_lifetime_caps_absolute_timeout(lifetime, absolute, expected) -> None:
    config = {"PERMANENT_SESSION_LIFETIME": lifetime, "SESSION_DYNAMODB_ABSOLUTE_TIMEOUT": absolute}
    assert parse_settings(config).absolute_timeout == expected


def test_refresh_interval_defaults_to_a_tenth_of_a_short_idle_timeout() -> None:
    assert parse_settings({"SESSION_DYNAMODB_IDLE_TIMEOUT": 300}).refresh_interval == 30


@pytest.mark.parametrize("threshold", [0, 1, 4096])
def test_compress_threshold_accepts_zero_and_any_byte_count(threshold: int) -> None:
    config = {"SESSION_DYNAMODB_COMPRESS_THRESHOLD": threshold}
    assert parse_settings(config).compress_threshold == threshold


INVALID: list[tuple[str, Any]] = [
    ("SESSION_DYNAMODB_ABSOLUTE_TIMEOUT", 0),
    ("SESSION_DYNAMODB_ABSOLUTE_TIMEOUT", -5),
    ("SESSION_DYNAMODB_ABSOLUTE_TIMEOUT", "600"),
    ("SESSION_DYNAMODB_IDLE_TIMEOUT", 0),
    ("SESSION_DYNAMODB_IDLE_TIMEOUT", -1),
    ("SESSION_DYNAMODB_IDLE_TIMEOUT", 1.5),
    ("SESSION_DYNAMODB_IDLE_TIMEOUT", True),
    ("SESSION_DYNAMODB_SID_BYTE_LENGTH", 15),
    ("SESSION_DYNAMODB_SID_BYTE_LENGTH", "32"),
    ("SESSION_DYNAMODB_SID_KEYS", "secret"),
    ("SESSION_DYNAMODB_SID_KEYS", ["ok", ""]),
    ("SESSION_DYNAMODB_SID_KEYS", [1]),
    ("SESSION_DYNAMODB_TABLE_NAME", "ab"),
    ("SESSION_DYNAMODB_TABLE_NAME", "bad name"),
    ("SESSION_DYNAMODB_ENDPOINT_URL", "localhost:8000"),
    ("SESSION_DYNAMODB_HEADER_NAME", "bad header"),
    ("SESSION_DYNAMODB_USE_HEADER", "yes"),
    ("SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME", 1),
    ("SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE", "False"),
    ("SESSION_DYNAMODB_CONSISTENT_READ", 0),
    ("SESSION_DYNAMODB_REFRESH_INTERVAL", -1),
    ("SESSION_DYNAMODB_REFRESH_INTERVAL", 7200),
    ("SESSION_DYNAMODB_CONNECT_TIMEOUT", 0),
    ("SESSION_DYNAMODB_READ_TIMEOUT", "2"),
    ("SESSION_DYNAMODB_MAX_ATTEMPTS", 0),
    ("SESSION_DYNAMODB_COMPRESS_THRESHOLD", -1),
    ("SESSION_DYNAMODB_COMPRESS_THRESHOLD", 1.5),
    ("SESSION_DYNAMODB_COMPRESS_THRESHOLD", "512"),
    ("SESSION_DYNAMODB_COMPRESS_THRESHOLD", False),
    ("PERMANENT_SESSION_LIFETIME", "1 day"),
    ("SESSION_DYNAMODB_USER_ID_KEY", ""),
    ("SESSION_DYNAMODB_USER_ID_KEY", 5),
    ("SESSION_DYNAMODB_RECORD_USER_AGENT", "no"),
    ("SESSION_DYNAMODB_USER_INDEX_NAME", "ix"),
    ("SESSION_DYNAMODB_USER_INDEX_NAME", "bad index"),
    ("SESSION_DYNAMODB_MIGRATE_V1", "true"),
]


@pytest.mark.parametrize(("key", "value"), INVALID)
def test_invalid_setting_is_named(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings({key: value})
    assert raised.value.setting == key
    assert key in str(raised.value)


def test_invalid_setting_fails_at_init_app_and_first_request() -> None:
    app = Flask(__name__)
    app.config["SESSION_DYNAMODB_IDLE_TIMEOUT"] = -1
    with pytest.raises(ConfigError, match="SESSION_DYNAMODB_IDLE_TIMEOUT"):
        DynamoDbSession().init_app(app)

    app.config["TESTING"] = True
    with pytest.raises(ConfigError, match="SESSION_DYNAMODB_IDLE_TIMEOUT"):
        app.test_client().get("/")


def test_unknown_key_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    parse_settings({"SESSION_DYNAMODB_IDLE_TIMOUT": 5})
    assert "SESSION_DYNAMODB_IDLE_TIMOUT" in caplog.text


def test_nothing_is_built_at_construction() -> None:
    # No client, no network, no settings read until an app uses the interface.
    interface = DynamoDbSession()
    assert interface._client is None
