"""Large values: stored compressed when that pays, read back whichever way they were stored,
written as per-key deltas, counted as text against the 400 KB limit, and a stored value
that cannot be read back ends its session instead of failing the request."""

from __future__ import annotations

import json
import logging
import random
import time
import zlib
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session

from dynamodb_session_flask import SessionTooLargeError, codec, compression
from dynamodb_session_flask.ids import loggable_id, storage_key
from dynamodb_session_flask.records import ITEM_SIZE_LIMIT

from .conftest import AppFactory, CallCounter, error_lines, item_count, random_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def cart(lines: int, first: int = 0) -> list[dict[str, Any]]:
    """Cart lines as a shop keeps them: JSON of one repeated shape, which compresses well."""
    return [
        {
            "sku": f"sku-{n:06d}",
            "name": "Organic cotton T-shirt",
            "colour": ["Navy", "Black", "Oatmeal"][n % 3],
            "size": "M",
            "price": f"{19 + n % 7}.90",
            "qty": 1 + n % 3,
        }
        for n in range(first, first + lines)
    ]


CART = cart(40)


def add_routes(app: Flask) -> None:
    @app.post("/put-json/<key>")
    def put_json(key: str) -> str:
        session[key] = request.get_json()
        return "stored"

    @app.post("/append-json/<key>")
    def append_json(key: str) -> str:
        session[key].append(request.get_json())
        return "appended"

    @app.get("/length/<key>")
    def length(key: str) -> Any:
        return jsonify(len(session[key]))


@pytest.fixture
def shop(make_app: AppFactory) -> tuple[Flask, CallCounter]:
    app, calls = make_app()
    add_routes(app)
    return app, calls


def stored_values(admin_client: DynamoDBClient, table_name: str) -> dict[str, Any]:
    """The ``data`` map of the table's only item, as DynamoDB holds it."""
    items = admin_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
    assert len(items) == 1
    return dict(items[0]["data"]["M"])


def test_large_json_value_is_stored_compressed_and_reads_back(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, _ = shop
    client = app.test_client()
    client.post("/put-json/cart", json=CART)
    client.get("/set?user=ann")

    stored = stored_values(admin_client, table_name)
    text = codec.encode_value("cart", CART)
    assert set(stored["cart"]) == {"B"}
    assert len(stored["cart"]["B"]) * 3 <= len(text.encode()) * 2
    assert stored["user"] == {"S": '"ann"'}, "small values stay text"
    assert client.get("/get").json == {"cart": CART, "user": "ann"}


def test_incompressible_value_stays_text(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, _ = shop
    client = app.test_client()
    token = random_text(8000)
    client.post("/put-json/token", json=token)

    assert stored_values(admin_client, table_name)["token"] == {"S": json.dumps(token)}
    assert client.get("/get").json == {"token": token}


def test_session_stored_as_text_before_compression_still_loads_and_changes(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, _ = shop
    sid = app.session_interface.context(app).ids.generate()  # type: ignore[attr-defined]
    now = time.time()
    # The item layout of earlier versions: every value its tagged JSON text.
    admin_client.put_item(
        TableName=table_name,
        Item={
            "id": {"S": storage_key(sid)},
            "data": {
                "M": {"cart": {"S": codec.encode_value("cart", CART)}, "user": {"S": '"ann"'}}
            },
            "created": {"N": str(now)},
            "refreshed": {"N": str(now)},
            "expires": {"N": str(int(now) + 600)},
            "idle_timeout": {"N": "600"},
            "absolute_timeout": {"N": "43200"},
        },
    )
    client = app.test_client()
    client.set_cookie("id", sid)

    assert client.get("/get").json == {"cart": CART, "user": "ann"}

    client.post("/append-json/cart", json=cart(1, first=40)[0])
    stored = stored_values(admin_client, table_name)
    assert set(stored["cart"]) == {"B"}, "the changed value is written as this version writes it"
    assert stored["user"] == {"S": '"ann"'}
    assert client.get("/get").json == {"cart": cart(41), "user": "ann"}


def test_only_changed_keys_are_written(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = shop
    client = app.test_client()
    client.post("/put-json/cart", json=CART)
    client.post("/put-json/wishlist", json=cart(30, first=100))
    calls.clear()

    assert client.get("/length/cart").json == 40
    assert client.get("/length/wishlist").json == 30
    assert calls == {"GetItem": 2}, "reading compressed values in place writes nothing"

    # Another writer changes the wishlist; a change to the cart must not write it back.
    key = storage_key(client.get_cookie("id").value)  # type: ignore[union-attr]
    admin_client.update_item(
        TableName=table_name,
        Key={"id": {"S": key}},
        UpdateExpression="SET #d.#w = :w",
        ExpressionAttributeNames={"#d": "data", "#w": "wishlist"},
        ExpressionAttributeValues={":w": {"S": '["from another request"]'}},
    )
    calls.clear()
    client.post("/append-json/cart", json=cart(1, first=40)[0])

    assert calls == {"GetItem": 1, "UpdateItem": 1}
    assert client.get("/get").json == {"cart": cart(41), "wishlist": ["from another request"]}


def prose(characters: int, seed: int = 0) -> str:
    """Ordinary text: words of a small vocabulary, which zlib shrinks to about a third."""
    words = "the of and a to in is you that it he was for on are as with his they".split()
    rng = random.Random(seed)
    text = " ".join(rng.choice(words) for _ in range(characters // 3))
    return text[:characters]


def test_compression_never_lets_more_than_the_item_limit_in(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = shop
    client = app.test_client()
    chunk = prose(300_000)
    assert len(compression.compress(json.dumps(chunk)) or b"") < 150_000, "it compresses"
    assert client.post("/put-json/notes", json=[chunk]).status_code == 200

    # Stored compressed, a second chunk would fit; as text the session would not.
    calls.clear()
    with pytest.raises(SessionTooLargeError) as raised:
        client.post("/append-json/notes", json=chunk)
    assert raised.value.size > raised.value.limit
    assert calls == {"GetItem": 1}, "refused before any write"
    assert client.get("/length/notes").json == 1, "what was stored is kept"

    # A new session too: a cart whose text is over the limit, however well it compresses.
    calls.clear()
    with pytest.raises(SessionTooLargeError):
        app.test_client().post("/put-json/cart", json=cart(5700))
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 1


def test_incompressible_value_over_the_limit_is_refused_before_any_write(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = shop
    with pytest.raises(SessionTooLargeError) as raised:
        app.test_client().post("/put-json/token", json=random_text(410_000))

    assert raised.value.size > raised.value.limit
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 0


def test_threshold_zero_stores_text_and_still_reads_compressed_values(
    make_app: AppFactory, admin_client: DynamoDBClient, table_name: str
) -> None:
    compressing, _ = make_app()
    plain, _ = make_app(SESSION_DYNAMODB_COMPRESS_THRESHOLD=0)
    for app in (compressing, plain):
        add_routes(app)
    writer = compressing.test_client()
    writer.post("/put-json/cart", json=CART)
    sid = writer.get_cookie("id").value  # type: ignore[union-attr]

    reader = plain.test_client()
    reader.set_cookie("id", sid)
    assert reader.get("/get").json == {"cart": CART}

    reader.post("/put-json/cart", json=cart(41))
    assert set(stored_values(admin_client, table_name)["cart"]) == {"S"}
    assert reader.get("/get").json == {"cart": cart(41)}


#: Stored forms that cannot be read back: what replaces the item's ``data.cart`` (or, for
#: ``data``, the whole map).
UNDECODABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "not zlib": ("data.cart", {"B": b"not a zlib stream"}),
    "zlib of text that is not JSON": ("data.cart", {"B": zlib.compress(b"not JSON " * 100)}),
    "zlib of bytes that are not UTF-8": ("data.cart", {"B": zlib.compress(b"\xff\xfe" * 100)}),
    "zlib of JSON past the item limit": (
        "data.cart",
        {"B": zlib.compress(json.dumps("a" * ITEM_SIZE_LIMIT).encode())},
    ),
    "text that is not JSON": ("data.cart", {"S": "not JSON"}),
    "a tag whose content is wrong": ("data.cart", {"S": '{" t":5}'}),
    "JSON nested too deep to decode": ("data.cart", {"S": "[" * 100_000 + "]" * 100_000}),
    "a number": ("data.cart", {"N": "1"}),
    "data as one text, not a map": ("data", {"S": '{"cart": []}'}),
}


@pytest.mark.parametrize(("path", "stored"), list(UNDECODABLE.values()), ids=list(UNDECODABLE))
def test_stored_value_that_cannot_be_read_back_ends_the_session(
    shop: tuple[Flask, CallCounter],
    admin_client: DynamoDBClient,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
    path: str,
    stored: dict[str, Any],
) -> None:
    app, _ = shop
    client = app.test_client()
    client.post("/put-json/cart", json=CART)
    client.get("/set?user=ann")
    sid = client.get_cookie("id").value  # type: ignore[union-attr]
    admin_client.update_item(
        TableName=table_name,
        Key={"id": {"S": storage_key(sid)}},
        UpdateExpression="SET " + ".".join(f"#{name}" for name in path.split(".")) + " = :v",
        ExpressionAttributeNames={f"#{name}": name for name in path.split(".")},
        ExpressionAttributeValues={":v": stored},  # type: ignore[dict-item]
    )

    with caplog.at_level(logging.INFO, logger="dynamodb_session_flask"):
        response = client.get("/get")

    assert response.status_code == 200
    assert response.json == {}, "a new session, not a 500 and not part of the old one"
    errors = error_lines(caplog)
    assert len(errors) == 1
    assert loggable_id(sid)[:16] in errors[0]
    assert path == "data" or "'cart'" in errors[0], "the key is named"
    assert sid not in caplog.text
    assert item_count(admin_client, table_name) == 0, "the old record is ended"
    assert client.get_cookie("id") is None, "and the client's id expired"

    assert client.get("/set?user=bob").json == {"user": "bob"}
    assert client.get_cookie("id").value != sid  # type: ignore[union-attr]
    assert client.get("/get").json == {"user": "bob"}


def test_change_to_more_keys_than_a_delta_holds_stores_large_values_compressed(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = shop

    @app.post("/many")
    def many() -> str:
        # More changed keys than one update expression may name: the whole map is written.
        for n in range(150):
            session[f"k{n}"] = n
        session["cart"] = cart(41)
        return "ok"

    client = app.test_client()
    client.post("/put-json/cart", json=CART)
    calls.clear()
    client.post("/many")

    assert calls == {"GetItem": 1, "UpdateItem": 1}
    stored = stored_values(admin_client, table_name)
    assert set(stored["cart"]) == {"B"} and stored["k7"] == {"S": "7"}
    assert client.get("/get").json == {"cart": cart(41), **{f"k{n}": n for n in range(150)}}


def test_key_names_count_against_the_item_limit(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    """DynamoDB counts each map entry's name as well as its value: many long keys with
    small values are over the limit, and refused before any write."""
    app, calls = shop

    @app.post("/many-keys")
    def many_keys() -> str:
        for n in range(320):
            session[f"{n:04d}-" + "k" * 1300] = 1
        return "stored"

    with pytest.raises(SessionTooLargeError) as raised:
        app.test_client().post("/many-keys")

    assert raised.value.size > 320 * 1300 > raised.value.limit
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 0
