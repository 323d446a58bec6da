"""Hostile and invalid input: garbage or forged ids, oversized sessions, values that cannot
be stored, and expired items still sitting in the table."""

from __future__ import annotations

import base64
import string
import time
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from itsdangerous import Signer
from werkzeug.test import TestResponse

from dynamodb_session_flask import SessionTooLargeError
from dynamodb_session_flask.ids import storage_key

from .conftest import AppFactory, CallCounter, item_count, random_text
from .support import cookie_id, expires_cookie

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: DynamoDB's item size limit, in bytes.
ITEM_LIMIT = 400 * 1024
SIGNING_KEY = "k"
URLSAFE = string.ascii_letters + string.digits + "-_"


# -- garbage and forged ids -----------------------------------------------------------


def could_be_issued(raw_id: str, signed: bool) -> bool:
    """An independent statement of which ids deserve a lookup: 32 random bytes in URL-safe
    base64 (43 characters), plus, when signing is on, ``.`` and a valid itsdangerous
    signature made with the configured key."""
    token, dot, signature = raw_id.partition(".")
    if len(token) != 43 or not all(c in URLSAFE for c in token):
        return False
    if not signed:
        return not dot
    return (
        len(signature) == 27
        and all(c in URLSAFE for c in signature)
        and Signer(SIGNING_KEY).validate(raw_id)
        # The one spelling of the signature's bytes, as we would have written it.
        and base64.urlsafe_b64encode(base64.urlsafe_b64decode(signature + "=")).rstrip(b"=")
        == signature.encode()
    )


def _urlsafe(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=URLSAFE, min_size=size, max_size=size)


def _tampered(signed_id: str, index: int, replacement: str) -> str:
    """``signed_id`` with the character at ``index`` (never the dot) replaced by another."""
    if signed_id[index] == ".":
        index -= 1
    if signed_id[index] == replacement:
        replacement = "B" if replacement == "A" else "A"
    return signed_id[:index] + replacement + signed_id[index + 1 :]


_token = _urlsafe(43)
_genuine = st.builds(lambda t: Signer(SIGNING_KEY).sign(t).decode(), _token)
hostile_ids = st.one_of(
    st.just(""),
    st.text(max_size=200),
    # Valid-looking lengths with any characters, including unicode and controls.
    st.text(min_size=43, max_size=43),
    st.text(min_size=71, max_size=71),
    # The right alphabet at the right lengths: well-formed, and forged when signing is on.
    _token,
    st.builds(lambda t, s: f"{t}.{s}", _token, _urlsafe(27)),
    st.builds(lambda t: Signer("some other key").sign(t).decode(), _token),
    # Genuinely signed (unknown to the table), and the same with one character changed.
    _genuine,
    st.builds(_tampered, _genuine, st.integers(0, 70), st.sampled_from(URLSAFE)),
    # Dots, separators and padding in odd places.
    st.text(alphabet=URLSAFE[:4] + ".=;, \"'\\", max_size=80),
    st.builds(lambda t, n: t[:n] + "." + t[n:], _token, st.integers(0, 43)),
    # Binary-ish: bytes seen through a latin-1 header.
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    # Very long values, around and past any length limit.
    st.text(alphabet=URLSAFE + ".", min_size=2000, max_size=4000),
    st.text(min_size=1000, max_size=4000),
)


def as_header_value(value: str) -> str:
    """What a WSGI server hands the app for this text sent as UTF-8 on the wire (PEP 3333:
    header values are latin-1 decoded bytes)."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


class FuzzTarget:
    """One app for all examples of a fuzz test, recording the id each request carried."""

    def __init__(self, make_app: AppFactory, *, use_header: bool, signed: bool) -> None:
        config: dict[str, Any] = {"SESSION_DYNAMODB_USE_HEADER": use_header}
        if signed:
            config["SESSION_DYNAMODB_SID_KEYS"] = [SIGNING_KEY]
        self.app, self.calls = make_app(**config)
        self.use_header = use_header
        self.signed = signed
        self.received: str | None = None

        @self.app.route("/fuzz")
        def fuzz() -> Any:
            # The id exactly as the app received it, to judge the expected DynamoDB cost.
            raw = request.cookies.get("id")
            if not raw and use_header:
                raw = request.headers.get("x-id")
            self.received = raw
            return jsonify(dict(session))

    def send(self, value: str) -> TestResponse:
        self.calls.clear()
        self.received = None
        headers = {"x-id": value} if self.use_header else {"Cookie": f"id={value}"}
        return self.app.test_client(use_cookies=False).get("/fuzz", headers=headers)


@pytest.fixture(
    params=[("cookie", False), ("cookie", True), ("header", False), ("header", True)],
    ids=["cookie-unsigned", "cookie-signed", "header-unsigned", "header-signed"],
)
def fuzz_target(request: pytest.FixtureRequest, make_app: AppFactory) -> FuzzTarget:
    transport, signed = request.param
    return FuzzTarget(make_app, use_header=transport == "header", signed=signed)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    # One app and table serve every example of a run; nothing in them carries over.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(raw=hostile_ids)
def test_garbage_and_forged_ids_never_cause_a_5xx_or_a_lookup(
    fuzz_target: FuzzTarget, raw: str
) -> None:
    value = as_header_value(raw)
    # No HTTP client can send a line break inside a header value.
    assume("\r" not in value and "\n" not in value)

    response = fuzz_target.send(value)

    # Not even a 4xx: an id the app cannot use just means the visitor has no session yet.
    assert response.status_code == 200
    assert response.json == {}
    received, calls = fuzz_target.received, fuzz_target.calls
    if received and could_be_issued(received, fuzz_target.signed):
        event("well-formed id: one lookup")
        # Well-formed but unknown: one lookup, then the stale cookie is expired.
        assert calls == {"GetItem": 1}
        assert expires_cookie(response)
    else:
        event("rejected id: no lookup" if received else "no id")
        assert calls.total() == 0, (received, dict(calls))
        if received:
            assert expires_cookie(response)
        else:
            assert "Set-Cookie" not in response.headers


# -- sessions too large for one item --------------------------------------------------


def add_size_routes(app: Flask) -> None:
    @app.route("/fill/<key>/<int:size>")
    def fill(key: str, size: int) -> str:
        # Incompressible, so the value takes its full size in the item.
        session[key] = random_text(size)
        return "filled"


@pytest.fixture
def sized(make_app: AppFactory) -> tuple[Flask, CallCounter]:
    app, calls = make_app()
    add_size_routes(app)
    return app, calls


def test_new_session_over_the_item_limit_is_refused_before_any_write(
    sized: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = sized
    client = app.test_client()

    with pytest.raises(SessionTooLargeError) as raised:
        client.get("/fill/big/410000")

    message = str(raised.value)
    assert str(raised.value.size) in message and str(ITEM_LIMIT) in message
    assert raised.value.size > ITEM_LIMIT == raised.value.limit
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # One value alone over the limit, replacing a small one.
        (("big", 10), ("big", 410_000)),
        # A session under the limit that a second key pushes past it.
        (("first", 300_000), ("second", 110_000)),
    ],
    ids=["one-value", "grown-by-a-delta"],
)
def test_existing_session_pushed_over_the_item_limit_is_left_unchanged(
    sized: tuple[Flask, CallCounter],
    admin_client: DynamoDBClient,
    table_name: str,
    first: tuple[str, int],
    second: tuple[str, int],
) -> None:
    app, calls = sized
    client = app.test_client()
    assert client.get(f"/fill/{first[0]}/{first[1]}").status_code == 200
    before = client.get("/get").json
    calls.clear()

    with pytest.raises(SessionTooLargeError, match=rf"{ITEM_LIMIT}"):
        client.get(f"/fill/{second[0]}/{second[1]}")

    assert calls["PutItem"] == 0 and calls["UpdateItem"] == 0, dict(calls)
    assert client.get("/get").json == before
    assert item_count(admin_client, table_name) == 1


def test_session_just_under_the_item_limit_is_saved(
    sized: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, _ = sized
    client = app.test_client()

    assert client.get("/fill/big/390000").status_code == 200
    assert client.get("/fill/small/1000").status_code == 200

    stored = client.get("/get").json
    assert stored == {"big": random_text(390_000), "small": random_text(1000)}
    assert item_count(admin_client, table_name) == 1


# -- values that cannot be stored -----------------------------------------------------


@pytest.mark.parametrize("value", [object(), {1, 2}], ids=["object", "set"])
def test_unserializable_value_is_a_type_error_naming_the_key(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str, value: object
) -> None:
    app, calls = make_app()

    @app.route("/bad")
    def bad() -> str:
        session["fine"] = "changed"
        session["unstorable"] = value
        return "stored?"

    client = app.test_client()
    client.get("/set?fine=original")
    calls.clear()

    with pytest.raises(TypeError, match="'unstorable'"):
        client.get("/bad")

    # Nothing of the request was written, not even the value that could have been.
    assert calls["UpdateItem"] == 0 and calls["PutItem"] == 0
    assert client.get("/get").json == {"fine": "original"}
    assert item_count(admin_client, table_name) == 1


def test_unserializable_value_in_a_new_session_writes_nothing(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = make_app()

    @app.route("/bad")
    def bad() -> str:
        session["unstorable"] = object()
        return "stored?"

    with pytest.raises(TypeError, match="'unstorable'"):
        app.test_client().get("/bad")
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 0


# -- expired items still in the table -------------------------------------------------


def put_session_item(
    admin_client: DynamoDBClient,
    table_name: str,
    sid: str,
    *,
    created: float,
    refreshed: float,
    idle: int,
    absolute: int,
) -> None:
    """Write an item in the library's layout, as a previous request would have."""
    expires = min(refreshed + idle, created + absolute)
    admin_client.put_item(
        TableName=table_name,
        Item={
            "id": {"S": storage_key(sid)},
            "data": {"M": {"user": {"S": '"alice"'}}},
            "created": {"N": str(created)},
            "refreshed": {"N": str(refreshed)},
            "expires": {"N": str(int(expires))},
            "idle_timeout": {"N": str(idle)},
            "absolute_timeout": {"N": str(absolute)},
        },
    )


@pytest.mark.parametrize(
    ("created_ago", "refreshed_ago"),
    [(1000, 1000), (50_000, 10)],
    ids=["idle-timeout-passed", "absolute-timeout-passed"],
)
def test_expired_item_left_in_the_table_is_never_loaded(
    make_app: AppFactory,
    admin_client: DynamoDBClient,
    table_name: str,
    created_ago: int,
    refreshed_ago: int,
) -> None:
    app, _ = make_app()
    sid = app.session_interface.context(app).ids.generate()  # type: ignore[attr-defined]
    now = time.time()
    put_session_item(
        admin_client,
        table_name,
        sid,
        created=now - created_ago,
        refreshed=now - refreshed_ago,
        idle=600,
        absolute=43_200,
    )
    # The control: the same layout with a live expiry loads, so the test writes items the
    # library can read.
    live_sid = app.session_interface.context(app).ids.generate()  # type: ignore[attr-defined]
    put_session_item(
        admin_client, table_name, live_sid, created=now, refreshed=now, idle=600, absolute=43_200
    )
    client = app.test_client(use_cookies=False)
    assert client.get("/get", headers={"Cookie": f"id={live_sid}"}).json == {"user": "alice"}

    response = client.get("/get", headers={"Cookie": f"id={sid}"})

    assert response.status_code == 200
    assert response.json == {}
    assert expires_cookie(response)
    # Writing to it starts a fresh session under a new id, without the old data.
    response = client.get("/set?b=1", headers={"Cookie": f"id={sid}"})
    new_sid = cookie_id(response)
    assert new_sid != sid
    assert client.get("/get", headers={"Cookie": f"id={new_sid}"}).json == {"b": "1"}


def test_respelled_signature_never_reaches_dynamodb(make_app: AppFactory) -> None:
    app, calls = make_app(SESSION_DYNAMODB_SID_KEYS=[SIGNING_KEY])
    client = app.test_client()
    client.get("/set?a=1")
    sid = client.get_cookie("id").value
    signature = sid.rpartition(".")[2]
    same_bytes = [
        sid[:-1] + c
        for c in URLSAFE
        if c != sid[-1]
        and base64.urlsafe_b64decode(signature[:-1] + c + "=")
        == base64.urlsafe_b64decode(signature + "=")
    ]
    assert len(same_bytes) == 3

    for variant in same_bytes:
        calls.clear()
        attacker = app.test_client()
        attacker.set_cookie("id", variant)
        response = attacker.get("/get")
        assert response.json == {}
        assert calls.total() == 0
    assert client.get("/get").json == {"a": "1"}
