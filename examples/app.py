"""A tiny shop whose login and cart live in a DynamoDB-backed Flask session, and which
shows on every page what the visitor's previous request cost in DynamoDB.

Run it with ``make demo`` (or ``python examples/serve.py``); under a multi-process server
with ``gunicorn examples.wsgi:app``. ``create_app`` is also what the tests drive.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import boto3
from flask import (
    Flask,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance

from . import metering, notices
from .cost_log import CostLog
from .devices import devices

MAX_USER_LENGTH = 64
MAX_ITEM_LENGTH = 100
# Each session is one DynamoDB item, and items are capped at 400 KB: bound what a client
# can make the server store.
MAX_CART_ITEMS = 50

#: A random, non-secret cookie naming the visitor for the cost display. It is not the
#: session id, which changes at login and logout and must never be stored elsewhere.
VISITOR_COOKIE = "demo_visitor"
VISITOR_MAX_AGE = 24 * 3600
#: The routes whose cost is recorded: a browser's other requests (a favicon, a 404) would
#: otherwise replace the figure the visitor came to see.
METERED_ENDPOINTS = frozenset(
    {
        "index",
        "login",
        "logout",
        "add_to_cart",
        "remove_from_cart",
        "devices.end",
        "devices.end_others",
    }
)
# Not the library's default "app_session": pointed at a real account, the demo should not
# write into a table an application already uses.
DEFAULT_TABLE_NAME = "dynamodb_session_flask_demo"
DEFAULT_COST_LOG = Path(tempfile.gettempdir()) / "dynamodb-session-flask-demo-costs.sqlite3"


def _session() -> DynamoDbSessionInstance:
    # ``flask.session`` is typed as Flask's generic session; this app installs
    # DynamoDbSession, so the object behind it has the extra methods.
    return cast(DynamoDbSessionInstance, session)


def _iso_utc(moment: datetime | float | None) -> str | None:
    """ISO 8601 in UTC, for a ``<time datetime>`` the page's script shows in local time."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _form_text(name: str, max_length: int) -> str:
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"The field {name!r} is required.")
    if len(value) > max_length:
        abort(400, description=f"The field {name!r} is longer than {max_length} characters.")
    return value


def _back_home(message: str) -> Response:
    # Save now, before promising anything: if DynamoDB fails, this raises and the visitor
    # gets the 503 without a message saying it worked ("Welcome", "Added"). At the end of
    # the request the save would fail only after the message was already in the response.
    _session().save()
    # 303 makes the browser follow up with a GET, so reloading the page does not re-post.
    return notices.leave(redirect(url_for("index"), code=303), message)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the shop. ``config`` is merged into ``app.config``; pass at least
    ``SESSION_DYNAMODB_ENDPOINT_URL`` (unless using AWS itself) and, optionally:

    * ``SESSION_DYNAMODB_TABLE_NAME``;
    * ``DEMO_COST_LOG``: the SQLite file shared by all processes serving the demo;
    * ``DEMO_BACKEND``: where the sessions are, in words, for the page's footer;
    * ``DEMO_CAPACITY_NOTE``: a caveat shown with the capacity figures;
    * ``DEMO_SHOW_WORKER``: show the serving process id (page footer and an
      ``X-Demo-Worker`` header), for tests that prove requests reach several processes.
    """
    app = Flask(__name__, root_path=str(Path(__file__).resolve().parent))

    # The demo is served over plain http://127.0.0.1, and browsers drop cookies marked
    # Secure there, so the session would never come back. NEVER turn this off in
    # production: serve over HTTPS and keep the library's Secure-cookie default.
    app.config["SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE"] = False
    # The shop keeps its user under "user" (Flask-Login's would be "_user_id"): sessions
    # holding it are bound to that user, for the devices panel.
    app.config["SESSION_DYNAMODB_USER_ID_KEY"] = "user"
    app.config.update(DEMO_COST_LOG=str(DEFAULT_COST_LOG), DEMO_BACKEND="DynamoDB")
    app.config.update(config or {})

    # Clients built from this boto3 session carry the metering hooks: the session
    # interface builds its client from it, so its every call is metered.
    boto3_session = boto3.session.Session()
    metering.attach(boto3_session.events)
    # Validates the SESSION_DYNAMODB_* settings and builds the client now, at start-up.
    interface = DynamoDbSession(boto3_session=boto3_session)
    interface.init_app(app)
    idle_minutes = interface.settings(app).idle_timeout // 60
    costs = CostLog(app.config["DEMO_COST_LOG"])
    app.register_blueprint(devices)

    @app.before_request
    def identify_visitor() -> None:
        g.visitor = request.cookies.get(VISITOR_COOKIE) or secrets.token_urlsafe(16)

    @app.after_request
    def remember_visitor(response: Response) -> Response:
        if request.cookies.get(VISITOR_COOKIE) != g.visitor:
            response.set_cookie(
                VISITOR_COOKIE, g.visitor, max_age=VISITOR_MAX_AGE, httponly=True, samesite="Lax"
            )
        if app.config.get("DEMO_SHOW_WORKER"):
            response.headers["X-Demo-Worker"] = str(os.getpid())
        return response

    @app.teardown_request
    def record_cost(exc: BaseException | None) -> None:
        # Teardown runs after the session was saved, so its writes are counted too.
        if request.endpoint not in METERED_ENDPOINTS or "visitor" not in g:
            return
        cost = metering.current()
        cost.method, cost.path = request.method, request.path
        costs.save(g.visitor, cost)

    @app.get("/")
    def index() -> Response:
        previous = costs.last(g.visitor) if VISITOR_COOKIE in request.cookies else None
        response = make_response()
        notice = notices.take(response)
        sess = _session()
        response.set_data(
            render_template(
                "shop.html",
                user=sess.get("user"),
                logged_in_at=_iso_utc(sess.get("logged_in_at")),
                cart=sess.get("cart", []),
                created_at=_iso_utc(sess.created_at),
                expires_at=_iso_utc(sess.expires_at),
                idle_minutes=idle_minutes,
                previous=previous,
                notice=notice,
                max_user=MAX_USER_LENGTH,
                max_item=MAX_ITEM_LENGTH,
                max_items=MAX_CART_ITEMS,
                backend=app.config["DEMO_BACKEND"],
                capacity_note=app.config.get("DEMO_CAPACITY_NOTE"),
                worker=os.getpid() if app.config.get("DEMO_SHOW_WORKER") else None,
            )
        )
        return response

    @app.post("/login")
    def login() -> Response:
        user = _form_text("user", MAX_USER_LENGTH)
        sess = _session()
        # A new id at every privilege change defeats session fixation: an id an attacker
        # planted before login is worthless after it. The cart comes along.
        sess.regenerate()
        sess["user"] = user
        sess["logged_in_at"] = datetime.now(timezone.utc)
        return _back_home(f"Welcome, {user}! Your session moved to a new id.")

    @app.post("/cart")
    def add_to_cart() -> Response:
        item = _form_text("item", MAX_ITEM_LENGTH)
        cart: list[str] = _session().setdefault("cart", [])
        if len(cart) >= MAX_CART_ITEMS:
            abort(400, description=f"The cart holds at most {MAX_CART_ITEMS} items.")
        # An in-place change to a nested value: the library notices it without
        # ``session.modified = True``.
        cart.append(item)
        return _back_home(f"Added “{item}” to your cart.")

    @app.post("/cart/remove")
    def remove_from_cart() -> Response:
        sess = _session()
        cart: list[str] = sess.get("cart", [])
        position = request.form.get("position", "")
        if not position.isdigit() or int(position) >= len(cart):
            abort(400, description="No such item in the cart.")
        item = cart.pop(int(position))
        if not cart:
            del sess["cart"]
        return _back_home(f"Removed “{item}” from your cart.")

    @app.post("/logout")
    def logout() -> Response:
        # Deletes the record at the end of the request and expires the cookie.
        _session().clear()
        return _back_home("You are logged out; that session id is now worthless.")

    return app
