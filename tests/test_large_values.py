"""Large values: stored compressed when that pays, read back whichever way they were stored,
written as per-key deltas, and counted at their stored size against the 400 KB limit."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session

from dynamodb_session_flask import SessionTooLargeError, codec
from dynamodb_session_flask.ids import storage_key

from .conftest import AppFactory, CallCounter, item_count, random_text

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


def test_compressed_size_counts_against_the_item_limit(
    shop: tuple[Flask, CallCounter], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, calls = shop
    client = app.test_client()
    big = cart(5700)
    assert len(codec.encode_value("cart", big)) > 590_000, "as text, far over the item limit"

    assert client.post("/put-json/cart", json=big).status_code == 200
    # A later delta is checked against the stored size too, not the text's.
    assert client.post("/put-json/note", json="hello").status_code == 200

    assert set(stored_values(admin_client, table_name)["cart"]) == {"B"}
    assert client.get("/get").json == {"cart": big, "note": "hello"}


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


def test_stored_value_that_does_not_decompress_is_a_malformed_item(
    shop: tuple[Flask, CallCounter],
    admin_client: DynamoDBClient,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = shop
    client = app.test_client()
    client.post("/put-json/cart", json=CART)
    key = storage_key(client.get_cookie("id").value)  # type: ignore[union-attr]
    admin_client.update_item(
        TableName=table_name,
        Key={"id": {"S": key}},
        UpdateExpression="SET #d.#c = :c",
        ExpressionAttributeNames={"#d": "data", "#c": "cart"},
        ExpressionAttributeValues={":c": {"B": b"not a zlib stream"}},
    )

    with caplog.at_level(logging.WARNING, logger="dynamodb_session_flask"):
        response = client.get("/get")

    assert response.status_code == 200
    assert response.json == {}
    assert "malformed session item" in caplog.text


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
