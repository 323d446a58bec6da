"""A tiny shop whose login and cart live in a DynamoDB-backed Flask session.

Run it with ``python examples/serve.py``; ``create_app`` is also what the tests drive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, cast

from flask import Flask, abort, redirect, render_template_string, request, session, url_for
from werkzeug.wrappers import Response

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance

if __package__:  # imported as examples.app (the tests) or as app (serve.py)
    from .devices import devices
else:
    from devices import devices

MAX_USER_LENGTH = 64
MAX_ITEM_LENGTH = 100
# Each session is one DynamoDB item, and items are capped at 400 KB: bound what a client
# can make the server store.
MAX_CART_ITEMS = 50

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Session demo shop</title></head>
<body>
  <h1>Session demo shop</h1>
  {% if user %}
    <p>Logged in as <strong id="user">{{ user }}</strong>
       {% if logged_in_at %}since {{ logged_in_at }}{% endif %}.</p>
    <form method="post" action="{{ url_for('logout') }}">
      <button type="submit">Log out</button>
    </form>
  {% else %}
    <form method="post" action="{{ url_for('login') }}">
      <label>Name <input name="user" required maxlength="{{ max_user }}"></label>
      <button type="submit">Log in</button>
    </form>
  {% endif %}

  <h2>Cart</h2>
  {% if cart %}
    <ul id="cart">{% for item in cart %}<li>{{ item }}</li>{% endfor %}</ul>
  {% else %}
    <p id="empty-cart">Your cart is empty.</p>
  {% endif %}
  <form method="post" action="{{ url_for('add_to_cart') }}">
    <label>Item <input name="item" required maxlength="{{ max_item }}"></label>
    <button type="submit">Add to cart</button>
  </form>

  <h2>Session</h2>
  {% if expires_at %}
    <p>This session was created at <span id="created">{{ created_at }}</span> and expires at
       <span id="expires">{{ expires_at }}</span> unless renewed by activity.</p>
  {% else %}
    <p>No session is stored for you yet.</p>
  {% endif %}

  {{ devices_panel() }}
</body>
</html>
"""


def _session() -> DynamoDbSessionInstance:
    # ``flask.session`` is typed as Flask's generic session; this app installs
    # DynamoDbSession, so the object behind it has the extra methods.
    return cast(DynamoDbSessionInstance, session)


def _utc(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _form_text(name: str, max_length: int) -> str:
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"The field {name!r} is required.")
    if len(value) > max_length:
        abort(400, description=f"The field {name!r} is longer than {max_length} characters.")
    return value


def _back_home() -> Response:
    # 303 makes the browser follow up with a GET, so reloading the page does not re-post.
    return redirect(url_for("index"), code=303)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the shop. ``config`` is merged into ``app.config``; pass at least
    ``SESSION_DYNAMODB_ENDPOINT_URL`` (unless using AWS itself) and, optionally,
    ``SESSION_DYNAMODB_TABLE_NAME``."""
    app = Flask(__name__)

    # The demo is served over plain http://127.0.0.1, and browsers drop cookies marked
    # Secure there, so the session would never come back. NEVER turn this off in
    # production: serve over HTTPS and keep the library's Secure-cookie default.
    app.config["SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE"] = False
    # The shop keeps its user under "user" (Flask-Login's would be "_user_id"): sessions
    # holding it are bound to that user, for the devices panel.
    app.config["SESSION_DYNAMODB_USER_ID_KEY"] = "user"
    app.config.update(config or {})

    # Validates the SESSION_DYNAMODB_* settings now instead of on the first request.
    DynamoDbSession().init_app(app)
    app.register_blueprint(devices)

    @app.get("/")
    def index() -> str:
        sess = _session()
        return render_template_string(
            PAGE,
            user=sess.get("user"),
            logged_in_at=_utc(sess.get("logged_in_at")),
            cart=sess.get("cart", []),
            created_at=_utc(sess.created_at),
            expires_at=_utc(sess.expires_at),
            max_user=MAX_USER_LENGTH,
            max_item=MAX_ITEM_LENGTH,
        )

    @app.post("/login")
    def login() -> Response:
        user = _form_text("user", MAX_USER_LENGTH)
        sess = _session()
        # A new id at every privilege change defeats session fixation: an id an attacker
        # planted before login is worthless after it. The cart comes along.
        sess.regenerate()
        sess["user"] = user
        sess["logged_in_at"] = datetime.now(timezone.utc)
        return _back_home()

    @app.post("/cart")
    def add_to_cart() -> Response:
        item = _form_text("item", MAX_ITEM_LENGTH)
        cart: list[str] = _session().setdefault("cart", [])
        if len(cart) >= MAX_CART_ITEMS:
            abort(400, description=f"The cart holds at most {MAX_CART_ITEMS} items.")
        # An in-place change to a nested value: the library notices it without
        # ``session.modified = True``.
        cart.append(item)
        return _back_home()

    @app.post("/logout")
    def logout() -> Response:
        # Deletes the record at the end of the request and expires the cookie.
        _session().clear()
        return _back_home()

    return app
