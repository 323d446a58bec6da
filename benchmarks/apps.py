"""The Flask apps under measurement: one shop, four ways of keeping its session.

Every app answers the same routes the example shop does (``POST /login`` with form field
``user``, ``GET /``, ``POST /cart`` with form field ``item``, ``POST /logout``) and sends the
same body for the same state, so only the session machinery differs. What a login stores
is one of the benchmark's payloads (see ``payloads.py``):

- ``floor``: Flask's own cookie session for the user and the items added to the cart, plus
  one raw GetItem per request of the payload stored as one text attribute, as large as the
  other apps' session. Any DynamoDB-backed session must at least fetch its data once per
  request and decode it. The payload is decoded with Flask's session serializer, the one
  every Flask session format uses.
- ``ours``: this package's ``DynamoDbSession`` with its defaults.
- ``ours_uncompressed``: the same with ``SESSION_DYNAMODB_COMPRESS_THRESHOLD = 0``: every
  value stored as text, as before values were compressed.
- ``flask_session``: Flask-Session's DynamoDB backend with its defaults, when installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from flask import Flask, request, session
from flask.json.tag import TaggedJSONSerializer

from .payloads import PAYLOADS, Payload

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

IMPLEMENTATIONS = ("floor", "ours", "ours_uncompressed", "flask_session")
LABELS = {
    "floor": "floor: cookie session + 1 GetItem",
    "ours": "dynamodb-session-flask (this package)",
    "ours_uncompressed": "this package, compression off",
    "flask_session": "Flask-Session 0.8 DynamoDB backend",
}
TABLES = {
    "floor": "bench_floor_profile",
    "ours": "bench_ours_session",
    "ours_uncompressed": "bench_ours_session",
    "flask_session": "bench_flask_session",
}
SECRET_KEY = "benchmark-only-secret-key-not-for-production"
#: Enough pooled connections for a threaded server's workers to share one client.
POOL_CONNECTIONS = 16

_serializer = TaggedJSONSerializer()


def dynamodb_client(endpoint_url: str) -> DynamoDBClient:
    """A low-level client for a local engine. Fixed dummy credentials: local engines do not
    check them, and real ones from the environment must never be sent to a test server."""
    return boto3.session.Session().client("dynamodb", **_local_engine(endpoint_url))


def _local_engine(endpoint_url: str) -> dict[str, Any]:
    """boto3 arguments shared by every client and resource the benchmark builds."""
    return {
        "endpoint_url": endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "benchmark",
        "aws_secret_access_key": "benchmark",
        "config": Config(max_pool_connections=POOL_CONNECTIONS, retries={"mode": "standard"}),
    }


def create_plain_table(client: DynamoDBClient, table_name: str) -> None:
    """Hash key ``id`` (S), on-demand: the layout every implementation here uses."""
    existing = client.list_tables()["TableNames"]
    if table_name in existing:
        return
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def summary(user: str | None, cart: Sequence[Any], details: Sequence[Any]) -> str:
    """The page body: it uses every part of the state so no implementation can skip one."""
    present = sum(1 for detail in details if detail)
    return f"{user or 'anonymous'}: {len(cart)} in cart, {present} details"


def _new_app(name: str) -> Flask:
    app = Flask(name)
    app.secret_key = SECRET_KEY
    return app


def floor_payload_key(payload: Payload) -> str:
    return f"payload-{payload.name}"


def seed_floor_payload(client: DynamoDBClient, table_name: str, payload: Payload) -> None:
    """Store the payload the floor app fetches on every request."""
    client.put_item(
        TableName=table_name,
        Item={
            "id": {"S": floor_payload_key(payload)},
            "payload": {"S": _serializer.dumps(payload.login_data())},
        },
    )


def _details(state: dict[str, Any]) -> list[Any]:
    return [value for key, value in state.items() if key not in ("user", "cart")]


def make_floor_app(client: DynamoDBClient, table_name: str, payload: Payload) -> Flask:
    app = _new_app("bench_floor")
    key = {"id": {"S": floor_payload_key(payload)}}

    def load_payload() -> dict[str, Any]:
        item = client.get_item(TableName=table_name, Key=key, ConsistentRead=True)["Item"]
        state: dict[str, Any] = _serializer.loads(item["payload"]["S"])
        return state

    def page(state: dict[str, Any]) -> str:
        cart = [*state["cart"], *session.get("added", [])]
        return summary(session.get("user"), cart, _details(state))

    @app.post("/login")
    def login() -> str:
        state = load_payload()
        session["user"] = request.form["user"]
        session["added"] = []
        return page(state)

    @app.get("/")
    def index() -> str:
        return page(load_payload())

    @app.post("/cart")
    def add_to_cart() -> str:
        state = load_payload()
        session["added"] = [*session.get("added", []), payload.cart_item(request.form["item"])]
        return page(state)

    @app.post("/logout")
    def logout() -> str:
        load_payload()
        session.clear()
        return summary(None, [], [])

    return app


def _add_session_views(app: Flask, payload: Payload) -> None:
    """The same shop with everything in the server-side session."""
    # Built once: what the views cost, not what building the payload costs, is measured.
    template = payload.login_data()

    def page() -> str:
        return summary(
            session.get("user"),
            session.get("cart", []),
            [session.get(key) for key in template if key != "cart"],
        )

    @app.post("/login")
    def login() -> str:
        session["user"] = request.form["user"]
        for key, value in template.items():
            session[key] = value
        return page()

    @app.get("/")
    def index() -> str:
        return page()

    @app.post("/cart")
    def add_to_cart() -> str:
        # Reassigned rather than appended in place: Flask-Session only saves what it sees
        # assigned, and the comparison is about cost, not about that difference.
        item = payload.cart_item(request.form["item"])
        session["cart"] = [*session.get("cart", []), item]
        return page()

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return summary(None, [], [])


def make_ours_app(
    client: DynamoDBClient, table_name: str, payload: Payload, *, compress: bool = True
) -> Flask:
    from dynamodb_session_flask import DynamoDbSession

    app = _new_app("bench_ours")
    app.config.update(
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        # The benchmark talks plain HTTP; a Secure cookie would never come back.
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    if not compress:
        app.config["SESSION_DYNAMODB_COMPRESS_THRESHOLD"] = 0
    app.session_interface = DynamoDbSession(client=client)
    _add_session_views(app, payload)
    return app


def create_ours_table(client: DynamoDBClient, table_name: str) -> None:
    from dynamodb_session_flask import create_table

    create_table(client=client, table_name=table_name)


def flask_session_problem() -> str | None:
    """Why Flask-Session's DynamoDB backend cannot be used here, or ``None`` when it can.
    (Its module imports ``mypy_boto3_dynamodb`` at run time without declaring it.)"""
    try:
        from flask_session.dynamodb import (  # type: ignore[import-untyped]  # noqa: F401
            DynamoDBSessionInterface,
        )
    except ImportError as exc:
        return str(exc)
    return None


def make_flask_session_app(endpoint_url: str, table_name: str, payload: Payload) -> Flask:
    """Flask-Session takes a boto3 resource; its low-level client is ``app.extensions
    ["bench_client"]`` so the caller can meter it."""
    from flask_session.dynamodb import DynamoDBSessionInterface

    resource = boto3.session.Session().resource("dynamodb", **_local_engine(endpoint_url))
    app = _new_app("bench_flask_session")
    app.session_interface = DynamoDBSessionInterface(app, client=resource, table_name=table_name)
    app.extensions["bench_client"] = resource.meta.client
    _add_session_views(app, payload)
    return app


def build_app(
    implementation: str, endpoint_url: str, payload_name: str
) -> tuple[Flask, DynamoDBClient]:
    """One app with its one shared DynamoDB client, ready to serve (tables must exist)."""
    table = TABLES[implementation]
    payload = PAYLOADS[payload_name]
    if implementation == "flask_session":
        app = make_flask_session_app(endpoint_url, table, payload)
        client: DynamoDBClient = app.extensions["bench_client"]
        return app, client
    client = dynamodb_client(endpoint_url)
    if implementation == "floor":
        return make_floor_app(client, table, payload), client
    if implementation in ("ours", "ours_uncompressed"):
        compress = implementation == "ours"
        return make_ours_app(client, table, payload, compress=compress), client
    raise ValueError(f"unknown implementation {implementation!r}; one of {IMPLEMENTATIONS}")


def prepare_tables(
    client: DynamoDBClient, payloads: Sequence[str], with_flask_session: bool
) -> None:
    """Create every table and the floor's stored payloads."""
    create_plain_table(client, TABLES["floor"])
    for name in payloads:
        seed_floor_payload(client, TABLES["floor"], PAYLOADS[name])
    create_ours_table(client, TABLES["ours"])
    if with_flask_session:
        create_plain_table(client, TABLES["flask_session"])
