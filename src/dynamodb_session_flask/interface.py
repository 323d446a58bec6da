"""``DynamoDbSession``: the Flask ``SessionInterface`` that carries session ids in cookies
(or headers) and keeps session data in DynamoDB."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from flask import Flask, after_this_request
from flask.globals import request_ctx
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request, Response

from .context import SessionContext, build_context, registered
from .diagnose import explain, warm
from .errors import SessionBackendError
from .ids import loggable_id
from .session import DynamoDbSessionInstance
from .settings import Settings
from .users import user_agent_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")

#: Longer than any id we issue; anything longer is rejected before even the shape check.
MAX_ID_LENGTH = 2048


class DynamoDbSession(SessionInterface):
    """Server-side sessions in DynamoDB::

        app.session_interface = DynamoDbSession()

    Settings are read from ``app.config`` (``SESSION_DYNAMODB_*``) and validated once per
    application, on its first request or by :meth:`init_app`; later config changes are not
    seen. Each application gets one DynamoDB client, built by :meth:`init_app` (or else on
    first use) and shared by all threads.

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

    def now(self) -> datetime:
        """The current time, aware UTC: the one clock sessions are timed by."""
        return datetime.now(timezone.utc)

    # -- per-application state ----------------------------------------------------------

    def init_app(self, app: Flask, *, warm_up: bool = False) -> None:
        """Validate the settings now (raising ``ConfigError``) rather than on the first
        request, build the DynamoDB client, install this interface as
        ``app.session_interface``, and add the ``flask dynamodb-session`` commands to
        ``app.cli`` (the package's ``flask.commands`` entry point adds them too, for apps
        that do not call this).

        Building the client here, at start-up (Lambda's init phase, a server worker's
        boot), keeps its cost out of the first request of every process. No DynamoDB call
        is made, unless ``warm_up``: then one GetItem of a key no session has (one read
        unit at most) opens the first connection now too, and a table that does not exist
        is reported now, as a warning with the command that creates it. A process forked
        after this builds its own client on first use.
        """
        # Imported here, not at the top: only apps that call init_app pay for the
        # command line's imports (click's groups), and a cold start stays short.
        from .cli import cli

        app.session_interface = self
        store = self.context(app).store
        try:
            store.prepare()
        except BotoCoreError as exc:
            # Building the client early only saves time: an environment without a region
            # (a test run, a CLI command) must not fail to start for it. The first request
            # that uses a session tries again, and gets a 503 if it still cannot.
            logger.warning(
                "DynamoDB client not built at start-up: %s; until then every request that "
                "uses a session answers 503",
                explain(exc, store.table_name),
            )
        else:
            if warm_up:
                warm(store)
        app.cli.add_command(cli)

    def context(self, app: Flask) -> SessionContext:
        """The application's settings, id rules and store, built once and kept in
        ``app.extensions`` (see :mod:`.context`)."""
        return registered(
            app,
            self,
            lambda: build_context(
                app.config,
                clock=lambda: self.now().timestamp(),
                client=self._client,
                boto3_session=self._boto3_session,
                botocore_config=self._botocore_config,
            ),
        )

    def settings(self, app: Flask) -> Settings:
        return self.context(app).settings

    # -- cookie attributes: Flask's hooks, with this package's overrides ------------------

    def get_cookie_name(self, app: Flask) -> str:
        """:attr:`override_cookie_name` while ``SESSION_DYNAMODB_OVERRIDE_COOKIE_NAME`` is on
        (the default), else Flask's ``SESSION_COOKIE_NAME``."""
        if self.settings(app).override_cookie_name:
            return self.override_cookie_name
        return super().get_cookie_name(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        """``True`` while ``SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE`` is on (the default),
        else Flask's ``SESSION_COOKIE_SECURE``."""
        return self.settings(app).override_cookie_secure or super().get_cookie_secure(app)

    def get_cookie_samesite(self, app: Flask) -> str:
        """Flask's ``SESSION_COOKIE_SAMESITE`` when set, else :attr:`default_samesite`."""
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
        # Kept in case this request binds the session to a user; no call is made for it.
        user_agent = (
            user_agent_of(request.headers.get("User-Agent"))
            if context.settings.record_user_agent
            else None
        )
        raw_id = request.cookies.get(self.get_cookie_name(app))
        header_name = self.get_header_name(app)
        if not raw_id and header_name is not None:
            raw_id = request.headers.get(header_name)
        if not raw_id:
            return self.session_class(context, user_agent=user_agent)
        if len(raw_id) <= MAX_ID_LENGTH and context.ids.is_valid(raw_id):
            session = self.session_class(context, raw_id, user_agent=user_agent)
            _watch_for_response_phase(request, session)
            return session
        failed = loggable_id(raw_id)
        logger.info("Rejected a malformed or forged session id %s", failed[:16])
        return self.session_class(context, failed_sid=failed, user_agent=user_agent)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what the request changed (at most one write, two when the id changed),
        then send the id out, or expire the client's cookie when its session ended.

        A DynamoDB failure, here or earlier in the request, turns the response into a 503
        rather than pretending the change was saved or the session was empty.
        """
        if not isinstance(session, DynamoDbSessionInstance) or not session.is_used:
            # A response that never depended on the session must stay cacheable: no Vary.
            return
        try:
            session.save()
        except SessionBackendError:
            pass  # recorded on the session as its backend_error
        header_name = self.get_header_name(app)
        response.vary.add("Cookie")
        if header_name is not None:
            response.vary.add(header_name)
        failure = session.backend_error
        if failure is not None:
            self._answer_unavailable(app, session, response, failure)
        elif session.is_stored:
            self._send_id(app, session, response, header_name)
        elif session.client_had_id:
            self._expire_cookie(app, response)

    def _answer_unavailable(
        self,
        app: Flask,
        session: DynamoDbSessionInstance,
        response: Response,
        failure: SessionBackendError,
    ) -> None:
        """Make ``response`` the 503 a DynamoDB failure calls for, keeping the
        application's other headers (HSTS, frame options, its other cookies)."""
        _replace_with_unavailable(response, failure)
        _drop_cookie(response, self.get_cookie_name(app))
        header_name = self.get_header_name(app)
        if header_name is not None:
            response.headers.pop(header_name, None)
        if session.ended_client_record:
            # The id the client holds is dead: let the browser forget it too.
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
        _keep_out_of_shared_caches(response)

    def _expire_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), **self._cookie_attributes(app))
        # A cached logout would log out everyone the cache serves it to.
        _keep_out_of_shared_caches(response)

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


def _watch_for_response_phase(request: Request, session: DynamoDbSessionInstance) -> None:
    """Tell the session when Flask starts finishing the response.

    Functions registered with ``after_this_request`` run before every ``after_request``
    hook, so this marks the point after which a DynamoDB failure must not be raised (Flask
    would answer 500 and log a traceback) but recorded for ``save_session`` to answer 503.
    """
    # Only for the request being served: session_transaction() opens sessions of
    # requests that are never dispatched.
    if request_ctx and request_ctx.request is request:

        @after_this_request
        def mark(response: Response) -> Response:
            session.mark_responding()
            return response


#: Headers that describe a response's body, dropped with the body a 503 replaces.
_BODY_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "Content-Language",
    "Content-Location",
    "Content-Range",
    "Content-Disposition",
    "Content-MD5",
    "ETag",
    "Last-Modified",
    "Location",
    "Refresh",
)


def _replace_with_unavailable(response: Response, exc: SessionBackendError) -> None:
    """Turn an already-built response into the 503 a DynamoDB failure calls for, so the
    client does not believe its change was stored; a 503 the application already built
    (its error page) is kept as it is."""
    if response.status_code != exc.code:
        unavailable = exc.get_response()
        for name in _BODY_HEADERS:
            response.headers.pop(name, None)
        response.status_code = unavailable.status_code
        response.set_data(unavailable.get_data())
        response.content_type = unavailable.content_type
    response.headers["Retry-After"] = "1"
    response.cache_control.no_store = True


def _drop_cookie(response: Response, name: str) -> None:
    """Remove every ``Set-Cookie`` of the cookie ``name`` from the response."""
    kept = [
        header
        for header in response.headers.getlist("Set-Cookie")
        if header.split("=", 1)[0].strip() != name
    ]
    response.headers.remove("Set-Cookie")
    for header in kept:
        response.headers.add("Set-Cookie", header)


def _keep_out_of_shared_caches(response: Response) -> None:
    """A response carrying a session id (or ending one) is one user's: mark it private so
    no CDN or proxy stores it, whatever caching the application asked for."""
    if "Cache-Control" not in response.headers:
        # The common case, without parsing and re-serializing the header.
        response.headers["Cache-Control"] = "private"
        return
    cache_control = response.cache_control
    cache_control.public = False
    cache_control.s_maxage = None
    cache_control.private = True
