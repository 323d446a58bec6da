"""The app the soak serves under gunicorn: ``gunicorn benchmarks.soak.app:app``.

Five routes, each answering the session's data as the view left it and whether the request
found a stored session (``loaded``), so the soak can check every answer against its model:

* ``GET /read``: the session's data;
* ``POST /set?k=KEY&v=VALUE``: one key changed;
* ``POST /login?user=USER``: a new id (``regenerate()``) and the session bound to the user;
* ``POST /logout``: the session ended (``clear()``);
* ``POST /end-others``: every other session of the user ended (``end_other_sessions()``).

The environment says where the sessions are: ``SOAK_ENDPOINT_URL`` and ``SOAK_TABLE_NAME``;
credentials and region come from boto3's usual environment variables.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, cast

from flask import Flask, abort, jsonify, request, session
from werkzeug.wrappers import Response

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance

from . import READY_LOGGER, READY_MESSAGE

#: The key holding the user, which binds a session to it (for ``end-others``).
USER_KEY = "user"
#: Keys ``/set`` may change: never the user.
DATA_KEYS = frozenset({"a", "b", "c", "d"})


def _session() -> DynamoDbSessionInstance:
    return cast(DynamoDbSessionInstance, session)


def _loaded() -> bool:
    """Load the session, and say whether a stored one was found."""
    return not _session().new


def _answer(data: dict[str, Any], loaded: bool, **extra: Any) -> Response:
    return jsonify(data=data, loaded=loaded, **extra)


def create_app(endpoint_url: str | None, table_name: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=endpoint_url,
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_USER_ID_KEY=USER_KEY,
        # Plain http on 127.0.0.1: a Secure cookie would not come back to the soak's client.
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    DynamoDbSession().init_app(app)

    @app.get("/read")
    def read() -> Response:
        loaded = _loaded()
        return _answer(dict(_session()), loaded)

    @app.post("/set")
    def set_key() -> Response:
        key, value = request.args.get("k", ""), request.args.get("v", "")
        if key not in DATA_KEYS or not value:
            abort(400)
        loaded = _loaded()
        sess = _session()
        sess[key] = value
        return _answer(dict(sess), loaded)

    @app.post("/login")
    def login() -> Response:
        user = request.args.get("user", "")
        if not user:
            abort(400)
        loaded = _loaded()
        sess = _session()
        before = dict(sess)
        sess.regenerate()
        sess[USER_KEY] = user
        return _answer({**before, USER_KEY: user}, loaded)

    @app.post("/logout")
    def logout() -> Response:
        loaded = _loaded()
        _session().clear()
        return _answer({}, loaded)

    @app.post("/end-others")
    def end_others() -> Response:
        loaded = _loaded()
        sess = _session()
        ended = sess.end_other_sessions()
        return _answer(dict(sess), loaded, ended=ended)

    return app


# Every worker's log lines, the package's included, go to stderr, which the soak captures
# and searches for session ids.
logging.basicConfig(
    level=logging.INFO,
    stream=sys.stderr,
    format="%(process)d %(levelname)s %(name)s: %(message)s",
)
app = create_app(
    os.environ.get("SOAK_ENDPOINT_URL") or None,
    os.environ.get("SOAK_TABLE_NAME", "soak_sessions"),
)
# The soak times a killed worker's replacement by this line.
logging.getLogger(READY_LOGGER).info(READY_MESSAGE)
