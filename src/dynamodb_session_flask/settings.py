"""Every ``SESSION_DYNAMODB_*`` setting: its default, its validation, and how it is read.

Settings are parsed once per application into a frozen :class:`Settings`; a bad value fails
right there with a :class:`~dynamodb_session_flask.errors.ConfigError` naming the key, not
halfway through some later request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .compression import DEFAULT_THRESHOLD as DEFAULT_COMPRESS_THRESHOLD
from .errors import ConfigError

logger = logging.getLogger("dynamodb_session_flask")

PREFIX = "SESSION_DYNAMODB_"

DEFAULT_ABSOLUTE_TIMEOUT = 43200
DEFAULT_IDLE_TIMEOUT = 7200
DEFAULT_HEADER_NAME = "x-id"
DEFAULT_SID_BYTE_LENGTH = 32
DEFAULT_TABLE_NAME = "app_session"
#: Seconds between idle-expiry refresh writes, unless a tenth of the idle timeout is smaller.
DEFAULT_MAX_REFRESH_INTERVAL = 60.0
#: Web-request-sized network budget: a user waits for at most a few seconds, not botocore's
#: 60 s read timeout times retries.
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_READ_TIMEOUT = 2.0
DEFAULT_MAX_ATTEMPTS = 3
#: Flask-Login's key: a session holding it is bound to that user.
DEFAULT_USER_ID_KEY = "_user_id"
DEFAULT_USER_INDEX_NAME = "user-index"

MIN_SID_BYTE_LENGTH = 16
#: A signed id must still fit comfortably in a 4 KB cookie.
MAX_SID_BYTE_LENGTH = 1024

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")
# RFC 9110 token characters: what a header name may consist of.
_HEADER_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class Settings:
    """The validated session settings of one Flask application."""

    absolute_timeout: int
    idle_timeout: int
    refresh_interval: float
    endpoint_url: str | None
    header_name: str
    use_header: bool
    sid_byte_length: int
    sid_keys: tuple[str | bytes, ...]
    table_name: str
    override_cookie_name: bool
    override_cookie_secure: bool
    consistent_read: bool
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    compress_threshold: int
    #: The session key whose value (str or int) binds a session to its user.
    user_id_key: str
    #: Whether a bound session keeps the User-Agent of the request that bound it.
    record_user_agent: bool
    #: The global secondary index on the bound user's id.
    user_index_name: str
    #: Look for a session stored by dynamodb-session-flask 1.x when none is found (see
    #: :mod:`.migration`).
    migrate_v1: bool = False


KNOWN_KEYS = frozenset(
    PREFIX + name
    for name in (
        "ABSOLUTE_TIMEOUT",
        "IDLE_TIMEOUT",
        "REFRESH_INTERVAL",
        "ENDPOINT_URL",
        "HEADER_NAME",
        "USE_HEADER",
        "SID_BYTE_LENGTH",
        "SID_KEYS",
        "TABLE_NAME",
        "OVERRIDE_COOKIE_NAME",
        "OVERRIDE_COOKIE_SECURE",
        "CONSISTENT_READ",
        "CONNECT_TIMEOUT",
        "READ_TIMEOUT",
        "MAX_ATTEMPTS",
        "COMPRESS_THRESHOLD",
        "USER_ID_KEY",
        "RECORD_USER_AGENT",
        "USER_INDEX_NAME",
        "MIGRATE_V1",
    )
)


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Read and validate the ``SESSION_DYNAMODB_*`` keys of a Flask config mapping.

    ``PERMANENT_SESSION_LIFETIME`` caps the absolute timeout, as Flask's own sessions are
    capped by it. Unknown ``SESSION_DYNAMODB_*`` keys are logged, not rejected, because apps
    migrating from Flask-Session carry keys of the same prefix.

    :raises ConfigError: naming the first invalid key.
    """
    _warn_unknown_keys(config)
    absolute = _positive_int(config, "ABSOLUTE_TIMEOUT", DEFAULT_ABSOLUTE_TIMEOUT)
    lifetime = _permanent_lifetime_seconds(config)
    if lifetime is not None:
        absolute = min(absolute, lifetime)
    idle = _positive_int(config, "IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
    _warn_idle_beyond_absolute(idle, absolute, lifetime)
    return Settings(
        absolute_timeout=absolute,
        idle_timeout=idle,
        refresh_interval=_refresh_interval(config, idle),
        endpoint_url=_endpoint_url(config),
        header_name=_header_name(config),
        use_header=_bool(config, "USE_HEADER", False),
        sid_byte_length=_sid_byte_length(config),
        sid_keys=_sid_keys(config),
        table_name=_table_name(config),
        override_cookie_name=_bool(config, "OVERRIDE_COOKIE_NAME", True),
        override_cookie_secure=_bool(config, "OVERRIDE_COOKIE_SECURE", True),
        consistent_read=_bool(config, "CONSISTENT_READ", True),
        connect_timeout=_positive_number(config, "CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        read_timeout=_positive_number(config, "READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        max_attempts=_positive_int(config, "MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
        compress_threshold=_compress_threshold(config),
        user_id_key=_user_id_key(config),
        record_user_agent=_bool(config, "RECORD_USER_AGENT", True),
        user_index_name=_index_name(config),
        migrate_v1=_bool(config, "MIGRATE_V1", False),
    )


def _warn_unknown_keys(config: Mapping[str, Any]) -> None:
    for key in config:
        if isinstance(key, str) and key.startswith(PREFIX) and key not in KNOWN_KEYS:
            logger.warning("Ignoring unknown setting %s (is it misspelled?)", key)


def _warn_idle_beyond_absolute(idle: int, absolute: int, lifetime: int | None) -> None:
    """An idle timeout longer than the absolute one never ends a session: the absolute
    one always comes first. A warning, not a ``ConfigError``: the package this one replaces
    accepted it, and Flask apps commonly set a short ``PERMANENT_SESSION_LIFETIME`` beside
    the default idle timeout; sessions then simply end at the absolute timeout."""
    if idle <= absolute:
        return
    source = (
        "PERMANENT_SESSION_LIFETIME"
        if lifetime is not None and lifetime == absolute
        else PREFIX + "ABSOLUTE_TIMEOUT"
    )
    logger.warning(
        "%sIDLE_TIMEOUT (%d s) is longer than the absolute timeout (%d s, from %s), so it "
        "never applies: sessions end at the absolute timeout. Set %sIDLE_TIMEOUT to at most "
        "%d, or lengthen %s.",
        PREFIX,
        idle,
        absolute,
        source,
        PREFIX,
        absolute,
        source,
    )


def _value(config: Mapping[str, Any], name: str, default: Any) -> Any:
    """The configured value, or the default when the key is absent or set to None."""
    value = config.get(PREFIX + name)
    return default if value is None else value


def _is_number(value: object) -> bool:
    # bool is an int subclass; ``SESSION_DYNAMODB_IDLE_TIMEOUT = True`` is a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(config: Mapping[str, Any], name: str, default: int) -> int:
    value = _value(config, name, default)
    if not (_is_number(value) and value == int(value) and value > 0):
        raise ConfigError(PREFIX + name, f"must be a positive whole number, got {value!r}")
    return int(value)


def _positive_number(config: Mapping[str, Any], name: str, default: float) -> float:
    value = _value(config, name, default)
    if not (_is_number(value) and value > 0):
        raise ConfigError(PREFIX + name, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _bool(config: Mapping[str, Any], name: str, default: bool) -> bool:
    value = _value(config, name, default)
    if not isinstance(value, bool):
        raise ConfigError(PREFIX + name, f"must be True or False, got {value!r}")
    return value


def _permanent_lifetime_seconds(config: Mapping[str, Any]) -> int | None:
    lifetime = config.get("PERMANENT_SESSION_LIFETIME")
    if lifetime is None:
        return None
    if isinstance(lifetime, timedelta):
        seconds = lifetime.total_seconds()
    elif _is_number(lifetime):
        seconds = float(lifetime)
    else:
        raise ConfigError(
            "PERMANENT_SESSION_LIFETIME", f"must be a timedelta or seconds, got {lifetime!r}"
        )
    if seconds < 1:
        raise ConfigError(
            "PERMANENT_SESSION_LIFETIME", f"must be at least one second, got {lifetime!r}"
        )
    return int(seconds)


def _refresh_interval(config: Mapping[str, Any], idle_timeout: int) -> float:
    key = PREFIX + "REFRESH_INTERVAL"
    value = config.get(key)
    if value is None:
        return min(DEFAULT_MAX_REFRESH_INTERVAL, idle_timeout / 10)
    if not (_is_number(value) and 0 <= value < idle_timeout):
        raise ConfigError(
            key,
            f"must be a number of seconds from 0 up to (not including) the idle timeout "
            f"({idle_timeout}), got {value!r}",
        )
    return float(value)


def _endpoint_url(config: Mapping[str, Any]) -> str | None:
    key = PREFIX + "ENDPOINT_URL"
    value = config.get(key)
    if value is None:
        return None
    if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        hint = ""
        if isinstance(value, str) and value and "://" not in value:
            scheme = "http" if value.startswith(("localhost", "127.", "[::1]")) else "https"
            hint = f" (did you mean {scheme}://{value}?)"
        raise ConfigError(key, f"must be an http:// or https:// URL or None, got {value!r}{hint}")
    return value


def _header_name(config: Mapping[str, Any]) -> str:
    key = PREFIX + "HEADER_NAME"
    value = _value(config, "HEADER_NAME", DEFAULT_HEADER_NAME)
    if not (isinstance(value, str) and _HEADER_TOKEN.fullmatch(value)):
        raise ConfigError(key, f"must be a valid HTTP header name, got {value!r}")
    return value


def _sid_byte_length(config: Mapping[str, Any]) -> int:
    key = PREFIX + "SID_BYTE_LENGTH"
    value = _value(config, "SID_BYTE_LENGTH", DEFAULT_SID_BYTE_LENGTH)
    if not (
        _is_number(value)
        and value == int(value)
        and MIN_SID_BYTE_LENGTH <= value <= MAX_SID_BYTE_LENGTH
    ):
        raise ConfigError(
            key,
            f"must be a whole number from {MIN_SID_BYTE_LENGTH} to {MAX_SID_BYTE_LENGTH} "
            f"(OWASP asks for at least 64 bits of entropy; 16 bytes is 128), got {value!r}",
        )
    return int(value)


def _sid_keys(config: Mapping[str, Any]) -> tuple[str | bytes, ...]:
    key = PREFIX + "SID_KEYS"
    value = _value(config, "SID_KEYS", [])
    # A lone string is iterable too; accepting it would sign with each of its characters.
    if not isinstance(value, (list, tuple)):
        raise ConfigError(
            key, f"must be a list of signing keys, oldest to newest, got {type(value).__name__}"
        )
    for item in value:
        if not (isinstance(item, (str, bytes)) and item):
            raise ConfigError(key, f"every key must be a non-empty str or bytes, got {item!r}")
    return tuple(value)


def _dynamodb_name(config: Mapping[str, Any], name: str, default: str, what: str) -> str:
    """A table or index name: both follow the same rules."""
    value = _value(config, name, default)
    if not (isinstance(value, str) and _TABLE_NAME.fullmatch(value)):
        raise ConfigError(
            PREFIX + name,
            f"must be a DynamoDB {what} name (3-255 characters of a-z, A-Z, 0-9, '_', '-', "
            f"'.'), got {value!r}",
        )
    return value


def _table_name(config: Mapping[str, Any]) -> str:
    return _dynamodb_name(config, "TABLE_NAME", DEFAULT_TABLE_NAME, "table")


def _compress_threshold(config: Mapping[str, Any]) -> int:
    key = PREFIX + "COMPRESS_THRESHOLD"
    value = _value(config, "COMPRESS_THRESHOLD", DEFAULT_COMPRESS_THRESHOLD)
    if not (_is_number(value) and value == int(value) and value >= 0):
        raise ConfigError(
            key,
            f"must be a whole number of bytes, 0 or more (0 turns compression off), got {value!r}",
        )
    return int(value)


def _user_id_key(config: Mapping[str, Any]) -> str:
    key = PREFIX + "USER_ID_KEY"
    value = _value(config, "USER_ID_KEY", DEFAULT_USER_ID_KEY)
    if not (isinstance(value, str) and value):
        raise ConfigError(
            key, f"must be the non-empty session key holding the user's id, got {value!r}"
        )
    return value


def _index_name(config: Mapping[str, Any]) -> str:
    return _dynamodb_name(config, "USER_INDEX_NAME", DEFAULT_USER_INDEX_NAME, "index")
