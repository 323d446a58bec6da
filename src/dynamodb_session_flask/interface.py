"""``DynamoDbSession``: the Flask ``SessionInterface`` that carries session ids in cookies
(or headers) and keeps session data in DynamoDB."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from flask import Flask
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request, Response

from .client import ClientProvider, default_config
from .errors import SessionBackendError
from .ids import SessionIds, loggable_id
from .session import DynamoDbSessionInstance, SessionContext
from .settings import Settings, parse_settings
from .store import SessionStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")

EXTENSION_KEY = "dynamodb_session"
#: Longer than any id we issue; anything longer is rejected before even the shape check.
MAX_ID_LENGTH = 2048


class DynamoDbSession(SessionInterface):
    """Server-side sessions in DynamoDB::

        app.session_interface = DynamoDbSession()

    Settings are read from ``app.config`` (``SESSION_DYNAMODB_*``) and validated once per
    application, on its first request or by :meth:`init_app`; later config changes are not
    seen. Each application gets one DynamoDB client, built on first use and shared by all
    threads.

    :param client: a low-level boto3 DynamoDB client to use instead of building one.
    :param boto3_session: the boto3 session to build the client from (region, credentials).
    :param botocore_config: botocore ``Config`` merged over the defaults built from the
        timeout and retry settings.
    """

    #: The cookie name used when ``SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME`` is on (OWASP's
    #: non-descript name).
    override_cookie_name = "id"
    #: ``SameSite`` used when Flask's ``SESSION_COOKIE_SAMESITE`` is ``None``.
    default_samesite = "Strict"
    session_class = DynamoDbSessionInstance

    def __init__(
        self,
        *,
        client: DynamoDBClient | None = None,
        boto3_session: boto3.session.Session | None = None,
        botocore_config: Config | None = None,
    ) -> None:
        self._client = client
        self._boto3_session = boto3_session
        self._botocore_config = botocore_config
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current time, aware UTC: the one clock sessions are timed by."""
        return datetime.now(timezone.utc)

    # -- per-application state ----------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Validate the settings now (raising ``ConfigError``) rather than on the first
        request, and install this interface as ``app.session_interface``."""
        app.session_interface = self
        self.context(app)

    def context(self, app: Flask) -> SessionContext:
        """The application's settings, id rules and store, built once."""
        context = app.extensions.get(EXTENSION_KEY)
        if isinstance(context, _OwnedContext) and context.owner is self:
            return context.context
        with self._lock:
            context = app.extensions.get(EXTENSION_KEY)
            if not (isinstance(context, _OwnedContext) and context.owner is self):
                context = _OwnedContext(self, self._build_context(app))
                app.extensions[EXTENSION_KEY] = context
            return context.context

    def settings(self, app: Flask) -> Settings:
        return self.context(app).settings

    def _build_context(self, app: Flask) -> SessionContext:
        settings = parse_settings(app.config)
        config = default_config(
            settings.connect_timeout, settings.read_timeout, settings.max_attempts
        )
        if self._botocore_config is not None:
            config = config.merge(self._botocore_config)
        provider = ClientProvider(
            client=self._client,
            boto3_session=self._boto3_session,
            config=config,
            endpoint_url=settings.endpoint_url,
        )
        store = SessionStore(
            settings.table_name,
            provider,
            consistent_read=settings.consistent_read,
            compress_threshold=settings.compress_threshold,
        )
        ids = SessionIds(settings.sid_byte_length, settings.sid_keys)
        return SessionContext(settings, ids, store, clock=lambda: self.now().timestamp())

    # -- cookie attributes: Flask's hooks, with this package's overrides ------------------

    def get_cookie_name(self, app: Flask) -> str:
        if self.settings(app).override_cookie_name:
            return self.override_cookie_name
        return super().get_cookie_name(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        return self.settings(app).override_cookie_secure or super().get_cookie_secure(app)

    def get_cookie_samesite(self, app: Flask) -> str:
        return super().get_cookie_samesite(app) or self.default_samesite

    def get_header_name(self, app: Flask) -> str | None:
        """The header carrying the id in header mode, ``None`` in cookie mode."""
        settings = self.settings(app)
        return settings.header_name if settings.use_header else None

    # -- the request ----------------------------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> DynamoDbSessionInstance:
        """Read the id from the cookie (or, in header mode, the header when there is no
        cookie) and return a session that loads itself on first use. Ids of the wrong
        shape or with a bad signature are dropped here, before any DynamoDB call."""
        context = self.context(app)
        raw_id = request.cookies.get(self.get_cookie_name(app))
        header_name = self.get_header_name(app)
        if not raw_id and header_name is not None:
            raw_id = request.headers.get(header_name)
        if not raw_id:
            return self.session_class(context)
        if len(raw_id) <= MAX_ID_LENGTH and context.ids.is_valid(raw_id):
            return self.session_class(context, raw_id)
        failed = loggable_id(raw_id)
        logger.info("Rejected a malformed or forged session id %s", failed[:16])
        return self.session_class(context, failed_sid=failed)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what the request changed (at most one write, two when the id changed),
        then send the id out, or expire the client's cookie when its session ended.

        A DynamoDB failure turns the response into a 503 rather than pretending the change
        was saved.
        """
        if not isinstance(session, DynamoDbSessionInstance) or not session.is_loaded:
            return
        try:
            session.save()
        except SessionBackendError as exc:
            _replace_with_unavailable(response, exc)
            return
        response.vary.add("Cookie")
        header_name = self.get_header_name(app)
        if header_name is not None:
            response.vary.add(header_name)
        if session.is_stored:
            self._send_id(app, session, response, header_name)
        elif session.client_had_id:
            self._expire_cookie(app, response)

    def _send_id(
        self,
        app: Flask,
        session: DynamoDbSessionInstance,
        response: Response,
        header_name: str | None,
    ) -> None:
        expires_at = session.expires_at
        assert expires_at is not None
        response.set_cookie(
            self.get_cookie_name(app),
            session.session_id,
            expires=datetime.fromtimestamp(expires_at, timezone.utc),
            **self._cookie_attributes(app),
        )
        if header_name is not None:
            response.headers[header_name] = session.session_id

    def _expire_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), **self._cookie_attributes(app))

    def _cookie_attributes(self, app: Flask) -> dict[str, Any]:
        """The attributes a cookie is set and expired with; they must match, or browsers
        keep the old cookie."""
        attributes: dict[str, Any] = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "httponly": self.get_cookie_httponly(app),
            "samesite": self.get_cookie_samesite(app),
        }
        # Flask < 3.1 has no partitioned cookies.
        if hasattr(self, "get_cookie_partitioned"):
            attributes["partitioned"] = self.get_cookie_partitioned(app)
        return attributes


class _OwnedContext:
    """An application's session context, tagged with the interface that built it so that
    replacing ``app.session_interface`` rebuilds it."""

    def __init__(self, owner: DynamoDbSession, context: SessionContext) -> None:
        self.owner = owner
        self.context = context


def _replace_with_unavailable(response: Response, exc: SessionBackendError) -> None:
    """Turn an already-built response into the 503 the failed save calls for, so the
    client does not believe its change was stored."""
    unavailable = exc.get_response()
    response.status_code = unavailable.status_code
    response.set_data(unavailable.get_data())
    response.headers.clear()
    response.headers.extend(unavailable.headers)
    response.headers["Retry-After"] = "1"
