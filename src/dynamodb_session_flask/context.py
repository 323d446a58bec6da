"""What a request or a command needs from its application: the settings, the id rules, the
store and the clock, built once per application and kept in ``app.extensions``.

The interface (:mod:`.interface`) builds the context of each application it serves and
registers it here; the admin functions (:mod:`.users`) and the command line (:mod:`.cli`)
find it here, so nothing below the interface imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from flask import Flask

from .client import ClientProvider, default_config
from .errors import ConfigError
from .ids import SessionIds
from .settings import Settings, parse_settings
from .store import SessionStore

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

#: Where an application's context is kept, in ``app.extensions``.
EXTENSION_KEY = "dynamodb_session"


@dataclass(frozen=True)
class SessionContext:
    """What a session needs from its application: settings, ids, the store and the clock
    (epoch seconds)."""

    settings: Settings
    ids: SessionIds
    store: SessionStore
    clock: Callable[[], float]


@runtime_checkable
class ContextSource(Protocol):
    """What serves an application's sessions and can build its context
    (:class:`~dynamodb_session_flask.DynamoDbSession`)."""

    def context(self, app: Flask) -> SessionContext: ...


def build_context(
    config: Mapping[str, Any],
    *,
    clock: Callable[[], float],
    client: DynamoDBClient | None = None,
    boto3_session: boto3.session.Session | None = None,
    botocore_config: Config | None = None,
) -> SessionContext:
    """Read and validate the settings in ``config`` and build the store (its client is
    built lazily, on first use) and the id rules.

    :raises ConfigError: naming the setting that is wrong.
    """
    settings = parse_settings(config)
    if client is not None and settings.endpoint_url is not None:
        given = client.meta.endpoint_url
        if given.rstrip("/") != settings.endpoint_url.rstrip("/"):
            raise ConfigError(
                "SESSION_DYNAMODB_ENDPOINT_URL",
                f"is {settings.endpoint_url!r}, but the client passed as "
                f"DynamoDbSession(client=...) talks to {given!r} and is used as it is: "
                f"build that client with endpoint_url={settings.endpoint_url!r}, or "
                f"remove the setting",
            )
    botocore = default_config(
        settings.connect_timeout, settings.read_timeout, settings.max_attempts
    )
    if botocore_config is not None:
        botocore = botocore.merge(botocore_config)
    provider = ClientProvider(
        client=client,
        boto3_session=boto3_session,
        config=botocore,
        endpoint_url=settings.endpoint_url,
    )
    store = SessionStore(
        settings.table_name,
        provider,
        consistent_read=settings.consistent_read,
        compress_threshold=settings.compress_threshold,
    )
    ids = SessionIds(settings.sid_byte_length, settings.sid_keys)
    return SessionContext(settings, ids, store, clock=clock)


@dataclass(frozen=True)
class _Registered:
    """A context, with the interface it was built by: an application whose interface is
    replaced gets a new one."""

    owner: object
    context: SessionContext


_lock = threading.Lock()


def registered(app: Flask, owner: object, build: Callable[[], SessionContext]) -> SessionContext:
    """``app``'s context as built by ``owner``: built by ``build()`` once, then kept."""
    found = app.extensions.get(EXTENSION_KEY)
    if isinstance(found, _Registered) and found.owner is owner:
        return found.context
    with _lock:
        found = app.extensions.get(EXTENSION_KEY)
        if not (isinstance(found, _Registered) and found.owner is owner):
            found = _Registered(owner, build())
            app.extensions[EXTENSION_KEY] = found
        return found.context


def context_of(app: Flask) -> SessionContext | None:
    """The context of ``app``'s session interface, ``None`` when that interface is not
    this package's."""
    interface = app.session_interface
    if isinstance(interface, ContextSource):
        return interface.context(app)
    return None
