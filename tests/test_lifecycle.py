"""What each request leaves behind: new sessions, clear, abandon, create, save, regenerate,
and ids that are malformed, forged or unknown."""

from __future__ import annotations

from flask import Flask

from .conftest import AppFactory, CallCounter, item_count
from .support import cookie_id, expires_cookie


def test_new_session_without_data_is_not_saved(app_and_calls, admin_client, table_name) -> None:
    app, calls = app_and_calls
    response = app.test_client().get("/get")

    assert "Set-Cookie" not in response.headers
    assert calls.total() == 0
    assert item_count(admin_client, table_name) == 0


def test_data_survives_across_requests(app_and_calls) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    client.get("/set?a=1&b=2")
    client.get("/set?b=3")
    client.get("/delete/a")
    assert client.get("/get").json == {"b": "3"}


def test_clear_removes_record_and_expires_cookie(app_and_calls, admin_client, table_name) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    sid = cookie_id(client.get("/set?a=1"))

    response = client.get("/clear")

    assert item_count(admin_client, table_name) == 0
    assert client.get_cookie("id") is None
    assert expires_cookie(response)
    client.set_cookie("id", sid)
    assert client.get("/get").json == {}


def test_data_after_clear_gets_a_new_id(app_and_calls, admin_client, table_name) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    old_sid = cookie_id(client.get("/set?a=1"))

    new_sid = cookie_id(client.get("/clear?b=2"))

    assert new_sid != old_sid
    assert client.get("/get").json == {"b": "2"}
    assert item_count(admin_client, table_name) == 1


def test_emptying_the_session_key_by_key_ends_it(app_and_calls, admin_client, table_name) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    client.get("/set?a=1")
    client.get("/delete/a")
    assert item_count(admin_client, table_name) == 0
    assert client.get_cookie("id") is None


def test_abandon_deletes_immediately(app_and_calls, admin_client, table_name) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    client.get("/set?a=1")
    calls.clear()

    client.get("/abandon")

    assert calls == {"DeleteItem": 1}
    assert item_count(admin_client, table_name) == 0
    assert client.get_cookie("id") is None


def test_create_starts_a_new_session_and_keeps_the_old_record(
    app_and_calls, admin_client, table_name
) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    old_sid = cookie_id(client.get("/set?a=1"))

    new_sid = cookie_id(client.get("/create?b=2"))

    assert new_sid != old_sid
    assert client.get("/get").json == {"b": "2"}
    assert item_count(admin_client, table_name) == 2
    old_client = app.test_client()
    old_client.set_cookie("id", old_sid)
    assert old_client.get("/get").json == {"a": "1"}


def test_regenerate_moves_data_to_a_new_id(app_and_calls, admin_client, table_name) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    old_sid = cookie_id(client.get("/set?a=1"))

    new_sid = cookie_id(client.get("/regenerate"))

    assert new_sid != old_sid
    assert client.get("/get").json == {"a": "1"}
    assert item_count(admin_client, table_name) == 1
    stale = app.test_client()
    stale.set_cookie("id", old_sid)
    assert stale.get("/get").json == {}


def test_manual_save_then_more_changes(app_and_calls) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    client.get("/save-then-set")
    assert calls == {"PutItem": 1, "UpdateItem": 1}
    assert client.get("/get").json == {"first": "1", "second": "2"}


def expect_rejected_without_calls(app: Flask, calls: CallCounter, cookie_value: str) -> None:
    client = app.test_client()
    client.set_cookie("id", cookie_value)
    response = client.get("/failed")
    assert response.json["new"] is True
    assert len(response.json["failed_sid"]) == 128
    assert calls.total() == 0
    # The dead id is expired so the client stops sending it.
    assert client.get_cookie("id") is None


def test_malformed_ids_never_reach_dynamodb(app_and_calls) -> None:
    app, calls = app_and_calls
    for value in ["short", "x" * 44, "a" * 42 + "!", "a" * 3000, "../../etc/passwd" * 3]:
        expect_rejected_without_calls(app, calls, value)


def test_forged_signature_never_reaches_dynamodb(make_app: AppFactory) -> None:
    app, calls = make_app(SESSION_DYNAMODB_SID_KEYS=["secret"])
    sid = cookie_id(app.test_client().get("/set?a=1"))
    calls.clear()
    assert len(sid) == 71
    token, signature = sid.split(".")
    # The first character: the last one also holds base64 padding bits, and changing only
    # those leaves the signature valid.
    forged = f"{token}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    expect_rejected_without_calls(app, calls, forged)
    expect_rejected_without_calls(app, calls, sid.split(".")[0])


def test_unknown_id_gives_a_new_session_with_a_new_id(app_and_calls) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    unknown = "A" * 43
    client.set_cookie("id", unknown)

    response = client.get("/failed")
    assert response.json["new"] is True
    assert len(response.json["failed_sid"]) == 128
    assert calls == {"GetItem": 1}

    client.set_cookie("id", unknown)
    assert cookie_id(client.get("/set?a=1")) != unknown


def test_signing_key_rotation_keeps_sessions(make_app: AppFactory) -> None:
    old_app, _ = make_app(SESSION_DYNAMODB_SID_KEYS=["old"])
    sid = cookie_id(old_app.test_client().get("/set?a=1"))

    rotated, _ = make_app(SESSION_DYNAMODB_SID_KEYS=["old", "new"])
    client = rotated.test_client()
    client.set_cookie("id", sid)
    assert client.get("/get").json == {"a": "1"}

    dropped, _ = make_app(SESSION_DYNAMODB_SID_KEYS=["new"])
    client = dropped.test_client()
    client.set_cookie("id", sid)
    assert client.get("/get").json == {}


def test_session_transaction_uses_dynamodb(app_and_calls) -> None:
    app, _ = app_and_calls
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["val"] = "from transaction"
    assert client.get("/get").json == {"val": "from transaction"}
