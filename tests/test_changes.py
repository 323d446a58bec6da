"""Change detection: only values that really changed are re-serialized and written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import jsonify, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup

from dynamodb_session_flask import codec
from dynamodb_session_flask.changes import ChangeTracker

from .conftest import AppFactory
from .test_values import VALUES


@pytest.mark.parametrize(
    ("stored", "now"),
    [(1, True), (1, 1.0), ({"a": [1]}, {"a": [True]}), ([1], [1, 2]), ({"a": 1}, {"a": 1, "b": 2})],
)
def test_values_that_serialize_differently_are_changed(stored: Any, now: Any) -> None:
    assert not codec.still_encodes_to(now, codec.encode_value("k", stored))
    assert codec.still_encodes_to(stored, codec.encode_value("k", stored))


def test_values_needing_tags_are_always_reserialized() -> None:
    text = codec.encode_value("k", [b"bytes"])
    assert not codec.still_encodes_to([b"bytes"], text)
    assert not codec.still_encodes_to([datetime_value()], codec.encode_value("k", []))


def datetime_value() -> Any:
    return VALUES["datetime"]


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
def test_decoding_matches_flasks_tagged_json(value: Any) -> None:
    text = codec.encode_value("k", value)
    assert codec.decode_value(text) == TaggedJSONSerializer().loads(text)


def test_string_that_looks_like_a_tag_round_trips() -> None:
    value = '{" t": ["not", "a", "tuple"]}'
    assert codec.decode_value(codec.encode_value("k", value)) == value


def test_reading_a_nested_value_keeps_the_stored_text() -> None:
    tracker = ChangeTracker()
    baseline = {"cart": '["a"]', "user": '"ann"'}
    tracker.reset(baseline)
    values: dict[str, Any] = {"cart": ["a"], "user": "ann"}
    tracker.handed_out("cart", values["cart"])
    assert tracker.current(values) == baseline
    values["cart"].append("b")
    assert tracker.current(values)["cart"] == '["a","b"]'


def test_in_place_change_of_type_only_is_saved(make_app: AppFactory) -> None:
    app, calls = make_app()

    @app.route("/flag/<int:on>")
    def flag(on: int) -> str:
        prefs = session.setdefault("prefs", {"flag": 1})
        prefs["flag"] = True if on else 1
        return "ok"

    client = app.test_client()
    client.get("/flag/0")
    calls.clear()
    client.get("/flag/1")
    assert calls == {"GetItem": 1, "UpdateItem": 1}
    assert client.get("/get").json == {"prefs": {"flag": True}}
    calls.clear()
    client.get("/flag/1")
    assert calls == {"GetItem": 1}, "an unchanged nested value is not written again"


def test_changes_after_a_manual_save_are_saved_too(make_app: AppFactory) -> None:
    app, _ = make_app()

    @app.route("/save-mid-way")
    def save_mid_way() -> str:
        cart = session.setdefault("cart", [])
        cart.append("first")
        session.save()  # type: ignore[attr-defined]
        cart.append("second")
        return "ok"

    client = app.test_client()
    client.get("/save-mid-way")
    assert client.get("/get").json == {"cart": ["first", "second"]}


def shape(value: Any) -> Any:
    """``value`` with every type spelled out, so that equal values of other types differ."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [shape(item) for item in value])
    return (type(value).__name__, value)


#: A value, and one of another type whose plain JSON text is the same.
SAME_TEXT_OTHER_TYPE = {
    "str to Markup": ("<b>x</b>", Markup("<b>x</b>")),
    "Markup to str": (Markup("<b>x</b>"), "<b>x</b>"),
    "list to tuple": ([1, "a"], (1, "a")),
    "tuple to list": ((1, "a"), [1, "a"]),
    "nested list to tuple": ({"a": [[1], 2]}, {"a": [(1,), 2]}),
    "nested str to Markup": ([{"m": "<i>"}], [{"m": Markup("<i>")}]),
}


@pytest.mark.parametrize("interface", ["Flask's cookie session", "DynamoDbSession"])
@pytest.mark.parametrize(
    ("before", "after"), list(SAME_TEXT_OTHER_TYPE.values()), ids=list(SAME_TEXT_OTHER_TYPE)
)
def test_a_value_replaced_by_another_type_with_the_same_json_is_saved(
    make_app: AppFactory, interface: str, before: Any, after: Any
) -> None:
    app, _ = make_app()
    if interface != "DynamoDbSession":
        app.secret_key = "test key"
        app.session_interface = SecureCookieSessionInterface()
    values = [before, after]

    @app.route("/store/<int:which>")
    def store(which: int) -> str:
        session["v"] = values[which]
        return "ok"

    @app.route("/shape")
    def read_shape() -> Any:
        return jsonify(shape(session["v"]))

    client = app.test_client()
    client.get("/store/0")
    assert client.get("/shape").json == json.loads(json.dumps(shape(before)))
    client.get("/store/1")
    assert client.get("/shape").json == json.loads(json.dumps(shape(after)))


def test_a_type_changed_in_place_inside_a_value_is_saved(make_app: AppFactory) -> None:
    app, calls = make_app()

    @app.route("/store")
    def store() -> str:
        session["v"] = {"rows": [[1, 2]], "note": "<i>"}
        return "ok"

    @app.route("/retype")
    def retype() -> str:
        value = session["v"]
        value["rows"][0] = (1, 2)
        value["note"] = Markup("<i>")
        return "ok"

    @app.route("/types")
    def types() -> Any:
        value = session["v"]
        return jsonify(row=type(value["rows"][0]).__name__, note=type(value["note"]).__name__)

    client = app.test_client()
    client.get("/store")
    calls.clear()
    client.get("/retype")
    assert calls == {"GetItem": 1, "UpdateItem": 1}
    assert client.get("/types").json == {"row": "tuple", "note": "Markup"}
    calls.clear()
    client.get("/types")
    assert calls == {"GetItem": 1}, "reading values that hold tags writes nothing"


def test_a_value_changed_back_after_a_manual_save_is_saved(make_app: AppFactory) -> None:
    app, _ = make_app()

    @app.route("/there-and-back")
    def there_and_back() -> str:
        cart = session["cart"]
        cart.append("pen")
        session.save()  # type: ignore[attr-defined]
        cart.remove("pen")  # as loaded again, but no longer as stored
        return "ok"

    @app.route("/change-through-an-old-reference")
    def change_through_an_old_reference() -> str:
        cart = session["cart"]
        session.save()  # type: ignore[attr-defined]
        cart.append("ink")
        session["cart"]  # handed out again, changed since it was stored
        return "ok"

    client = app.test_client()
    client.get("/append/cart/book")
    client.get("/there-and-back")
    assert client.get("/get").json == {"cart": ["book"]}
    client.get("/change-through-an-old-reference")
    assert client.get("/get").json == {"cart": ["book", "ink"]}


def test_del_removes_the_key_for_good(make_app: AppFactory) -> None:
    """A logout written as ``del session[...]`` must remove the key from the stored
    session, not only from this request's copy."""
    app, calls = make_app()

    @app.route("/logout")
    def logout() -> Any:
        del session["user_id"]
        # Flask's own sessions say so too; applications may read it.
        return jsonify(modified=session.modified)

    client = app.test_client()
    client.get("/set?user_id=alice&theme=dark")
    calls.clear()

    assert client.get("/logout").json == {"modified": True}

    assert calls == {"GetItem": 1, "UpdateItem": 1}
    assert client.get("/get").json == {"theme": "dark"}


@pytest.mark.parametrize("view", ["items", "values", "copy", "get", "setdefault"])
def test_nested_values_reached_through_any_accessor_are_tracked(
    make_app: AppFactory, view: str
) -> None:
    """Every way a view can get hold of a stored list hands it out for tracking, so an
    in-place change made through it is saved without ``session.modified``."""
    app, _ = make_app()
    reach = {
        "items": lambda: [value for _, value in session.items()],
        "values": lambda: list(session.values()),
        "copy": lambda: list(session.copy().values()),
        "get": lambda: [session.get("cart")],
        "setdefault": lambda: [session.setdefault("cart", [])],
    }[view]

    @app.route("/tag")
    def tag() -> str:
        for value in reach():
            value.append("seen")
        return "tagged"

    client = app.test_client()
    client.get("/append/cart/book")
    client.get("/tag")

    assert client.get("/get").json == {"cart": ["book", "seen"]}
