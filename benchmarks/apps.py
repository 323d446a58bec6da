"""The Flask apps under measurement: one shop, three ways of keeping its session.

Every app answers the same routes the example shop does (``POST /login`` with form field
``user``, ``GET /``, ``POST /cart`` with form field ``item``, ``POST /logout``) and sends the
same body for the same state, so only the session machinery differs:

- ``floor``: Flask's own cookie session for the user and cart, plus one raw GetItem per
  request of a stored profile as large as the other apps' session. Any DynamoDB-backed
  session must at least fetch its data once per request and decode it, so this is the cost
  below which no implementation can go. The profile is decoded with Flask's session
  serializer, the one every Flask session format uses.
- ``ours``: this package's ``DynamoDbSession``.
- ``flask_session``: Flask-Session's DynamoDB backend with its defaults, when installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from flask import Flask, request, session
from flask.json.tag import TaggedJSONSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

IMPLEMENTATIONS = ("floor", "ours", "flask_session")
LABELS = {
    "floor": "floor: cookie session + 1 GetItem",
    "ours": "dynamodb-session-flask (this package)",
    "flask_session": "Flask-Session 0.8 DynamoDB backend",
}
TABLES = {
    "floor": "bench_floor_profile",
    "ours": "bench_ours_session",
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


def profile_template(size: int) -> dict[str, Any]:
    """A user profile whose serialized form is about ``size`` bytes: what a login puts in
    the session. Deterministic, so every implementation stores the same bytes."""
    profile: dict[str, Any] = {
        "user": "",
        "display_name": "Benchmark User",
        "email": "user@example.test",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "roles": ["customer", "newsletter"],
        "preferences": {"currency": "EUR", "theme": "dark", "page_size": 24},
        "recently_viewed": [],
    }
    viewed: list[str] = profile["recently_viewed"]
    while len(_serializer.dumps(profile)) < size:
        viewed.append(f"sku-{len(viewed):06d}")
    return profile


def summary(user: str | None, cart: list[str], profile: Mapping[str, Any]) -> str:
    """The page body: it uses every part of the state so no implementation can skip one."""
    return f"{user or 'anonymous'}: {len(cart)} in cart, {len(profile)} profile fields"


def _new_app(name: str) -> Flask:
    app = Flask(name)
    app.secret_key = SECRET_KEY
    return app


def floor_profile_key(size: int) -> str:
    return f"profile-{size}"


def seed_floor_profile(client: DynamoDBClient, table_name: str, size: int) -> None:
    """Store the profile the floor app fetches on every request."""
    client.put_item(
        TableName=table_name,
        Item={
            "id": {"S": floor_profile_key(size)},
            "profile": {"S": _serializer.dumps(profile_template(size))},
        },
    )


def make_floor_app(client: DynamoDBClient, table_name: str, size: int) -> Flask:
    app = _new_app("bench_floor")
    key = {"id": {"S": floor_profile_key(size)}}

    def load_profile() -> dict[str, Any]:
        item = client.get_item(TableName=table_name, Key=key, ConsistentRead=True)["Item"]
        profile: dict[str, Any] = _serializer.loads(item["profile"]["S"])
        return profile

    @app.post("/login")
    def login() -> str:
        profile = load_profile()
        session["user"] = request.form["user"]
        session["cart"] = []
        return summary(session["user"], session["cart"], profile)

    @app.get("/")
    def index() -> str:
        profile = load_profile()
        return summary(session.get("user"), session.get("cart", []), profile)

    @app.post("/cart")
    def add_to_cart() -> str:
        profile = load_profile()
        session["cart"] = [*session.get("cart", []), request.form["item"]]
        return summary(session.get("user"), session["cart"], profile)

    @app.post("/logout")
    def logout() -> str:
        load_profile()
        session.clear()
        return summary(None, [], {})

    return app


def _add_session_views(app: Flask, size: int) -> None:
    """The same shop with everything in the server-side session."""
    template = profile_template(size)

    @app.post("/login")
    def login() -> str:
        user = request.form["user"]
        session["user"] = user
        session["profile"] = {**template, "user": user}
        session["cart"] = []
        return summary(user, [], session["profile"])

    @app.get("/")
    def index() -> str:
        return summary(session.get("user"), session.get("cart", []), session.get("profile", {}))

    @app.post("/cart")
    def add_to_cart() -> str:
        # Reassigned rather than appended in place: Flask-Session only saves what it sees
        # assigned, and the comparison is about cost, not about that difference.
        session["cart"] = [*session.get("cart", []), request.form["item"]]
        return summary(session.get("user"), session["cart"], session.get("profile", {}))

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return summary(None, [], {})


def make_ours_app(client: DynamoDBClient, table_name: str, size: int) -> Flask:
    from dynamodb_session_flask import DynamoDbSession

    app = _new_app("bench_ours")
    app.config.update(
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        # The benchmark talks plain HTTP; a Secure cookie would never come back.
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    app.session_interface = DynamoDbSession(client=client)
    _add_session_views(app, size)
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


def make_flask_session_app(endpoint_url: str, table_name: str, size: int) -> Flask:
    """Flask-Session takes a boto3 resource; its low-level client is ``app.extensions
    ["bench_client"]`` so the caller can meter it."""
    from flask_session.dynamodb import DynamoDBSessionInterface

    resource = boto3.session.Session().resource("dynamodb", **_local_engine(endpoint_url))
    app = _new_app("bench_flask_session")
    app.session_interface = DynamoDBSessionInterface(app, client=resource, table_name=table_name)
    app.extensions["bench_client"] = resource.meta.client
    _add_session_views(app, size)
    return app


def build_app(implementation: str, endpoint_url: str, size: int) -> tuple[Flask, DynamoDBClient]:
    """One app with its one shared DynamoDB client, ready to serve (tables must exist)."""
    table = TABLES[implementation]
    if implementation == "flask_session":
        app = make_flask_session_app(endpoint_url, table, size)
        client: DynamoDBClient = app.extensions["bench_client"]
        return app, client
    client = dynamodb_client(endpoint_url)
    if implementation == "floor":
        return make_floor_app(client, table, size), client
    if implementation == "ours":
        return make_ours_app(client, table, size), client
    raise ValueError(f"unknown implementation {implementation!r}; one of {IMPLEMENTATIONS}")


def prepare_tables(
    client: DynamoDBClient, sizes: tuple[int, ...], with_flask_session: bool
) -> None:
    """Create every table and the floor's stored profiles."""
    create_plain_table(client, TABLES["floor"])
    for size in sizes:
        seed_floor_profile(client, TABLES["floor"], size)
    create_ours_table(client, TABLES["ours"])
    if with_flask_session:
        create_plain_table(client, TABLES["flask_session"])
