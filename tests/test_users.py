"""Per-user sessions: binding a session to its user, listing a user's live sessions, and
ending them (OWASP ASVS 3.3.3 and 3.3.4), through Flask's test client as an application
would use them."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any, Callable, TypeVar

import pytest
from flask import Flask, jsonify, session
from flask.testing import FlaskClient

from dynamodb_session_flask import (
    DynamoDbSessionInstance,
    SessionInfo,
    UserIndexMissingError,
    create_table,
    end_user_sessions,
    list_user_sessions,
)
from dynamodb_session_flask.ids import storage_key
from dynamodb_session_flask.user_index import BATCH_ATTEMPTS

from .conftest import LOGGER, AppFactory, CallCounter, error_lines, proxied_app
from .fault_proxy import FaultProxy
from .support import expires_cookie, freeze_clock

T = TypeVar("T")
sess: DynamoDbSessionInstance = session  # type: ignore[assignment]

#: Longest a test waits for the index to catch up (it is eventually consistent).
INDEX_WAIT = 5.0


def eventually(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    """``read()`` again until ``done`` holds: the per-user index, like DynamoDB's, may
    trail the table by a moment. Returns the last value read."""
    deadline = time.monotonic() + INDEX_WAIT
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def info_json(info: SessionInfo) -> dict[str, Any]:
    fields = asdict(info)
    for name in ("created_at", "last_active_at", "expires_at"):
        assert fields[name].utcoffset().total_seconds() == 0, "aware UTC datetimes"
        fields[name] = fields[name].timestamp()
    return fields


def add_user_routes(app: Flask) -> None:
    @app.route("/login/<user>")
    def login(user: str) -> Any:
        sess.regenerate()
        sess["_user_id"] = user
        return "logged in"

    @app.route("/login-int/<int:user>")
    def login_int(user: int) -> Any:
        sess["_user_id"] = user
        return "logged in"

    @app.route("/logout-user")
    def logout_user() -> Any:
        # What Flask-Login's logout_user() does: remove its key, keep the session.
        sess.pop("_user_id", None)
        return "logged out"

    @app.route("/devices")
    def devices() -> Any:
        return jsonify([info_json(info) for info in sess.user_sessions()])

    @app.route("/end-others")
    def end_others() -> Any:
        return jsonify(ended=sess.end_other_sessions())

    @app.route("/end/<path:handle>")
    def end(handle: str) -> Any:
        return jsonify(ended=sess.end_user_session(handle))

    @app.route("/password-changed")
    def password_changed() -> Any:
        # The README's example: a new id for this session, every other one ended.
        sess.regenerate()
        return jsonify(ended=sess.end_other_sessions())


@pytest.fixture
def users_app(make_app: AppFactory) -> tuple[Flask, CallCounter]:
    app, calls = make_app()
    add_user_routes(app)
    return app, calls


def browser(app: Flask, user_agent: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def logged_in(app: Flask, user: str, user_agent: str) -> FlaskClient:
    client = browser(app, user_agent)
    assert client.get(f"/login/{user}").status_code == 200
    return client


def devices(client: FlaskClient, expected: int | None = None) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        response = client.get("/devices")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json  # type: ignore[no-any-return]

    if expected is None:
        return read()
    return eventually(read, lambda listed: len(listed) == expected)


def is_logged_in(client: FlaskClient) -> bool:
    return "_user_id" in client.get("/get").json


# -- listing ----------------------------------------------------------------------------


def test_each_user_sees_their_own_live_sessions_newest_first(make_app: AppFactory) -> None:
    app, _ = make_app()
    clock = freeze_clock(app)
    add_user_routes(app)
    alice = []
    for n in range(3):
        alice.append(logged_in(app, "alice", f"Browser A{n}"))
        clock.advance(10)
    bob = [logged_in(app, "bob", f"Browser B{n}") for n in range(2)]

    listed = devices(alice[1], expected=3)

    assert [row["user_agent"] for row in listed] == ["Browser A2", "Browser A1", "Browser A0"]
    assert [row["current"] for row in listed] == [False, True, False]
    assert [row["created_at"] for row in listed] == sorted(
        (row["created_at"] for row in listed), reverse=True
    )
    bobs = devices(bob[0], expected=2)
    assert {row["user_agent"] for row in bobs} == {"Browser B0", "Browser B1"}
    assert not {row["handle"] for row in bobs} & {row["handle"] for row in listed}


def test_listing_shows_times_and_never_an_id(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=600)
    clock = freeze_clock(app)
    add_user_routes(app)
    start = clock.current.timestamp()
    client = logged_in(app, "alice", "Browser")
    clock.advance(120)  # past the refresh interval: the next use is recorded
    client.get("/get")
    clock.advance(5)

    (row,) = devices(client, expected=1)

    assert row["created_at"] == start
    assert row["last_active_at"] == start + 120
    assert row["expires_at"] == start + 120 + 600
    assert row["current"] is True
    sid = client.get_cookie("id").value
    assert sid not in str(row) and storage_key(sid) not in str(row)
    assert len(row["handle"]) == 22


def test_a_session_without_a_user_lists_and_ends_nothing(users_app) -> None:
    app, calls = users_app
    client = browser(app, "Browser")
    client.get("/set?cart=book")
    calls.clear()

    assert client.get("/devices").json == []
    assert client.get("/end-others").json == {"ended": 0}
    assert client.get("/end/" + "A" * 22).json == {"ended": False}
    assert calls["Query"] == 0, "no user: no index lookup"


def test_user_id_may_be_an_int(users_app) -> None:
    app, _ = users_app
    client = browser(app, "Browser")
    client.get("/login-int/42")

    assert len(devices(client, expected=1)) == 1
    with app.app_context():
        assert len(eventually(lambda: list_user_sessions(42), bool)) == 1
        assert len(list_user_sessions("42")) == 1


def test_user_agent_is_truncated_or_not_recorded(make_app: AppFactory) -> None:
    app, _ = make_app()
    add_user_routes(app)
    client = logged_in(app, "alice", "x" * 1000)
    assert devices(client, expected=1)[0]["user_agent"] == "x" * 256

    app, _ = make_app(SESSION_DYNAMODB_RECORD_USER_AGENT=False)
    add_user_routes(app)
    client = logged_in(app, "carol", "Browser")
    assert devices(client, expected=1)[0]["user_agent"] is None


def test_custom_user_id_key(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_USER_ID_KEY="account")
    add_user_routes(app)
    client = browser(app, "Browser")
    client.get("/set?account=acct-7")
    with app.app_context():
        assert len(eventually(lambda: list_user_sessions("acct-7"), bool)) == 1
    client.get("/login/alice")  # _user_id is just data under this setting
    with app.app_context():
        assert list_user_sessions("alice") == []


# -- what changes a listing ---------------------------------------------------------------


@pytest.mark.parametrize("logout", ["/clear", "/abandon", "/logout-user"])
def test_a_logged_out_session_is_not_listed(users_app, logout: str) -> None:
    app, _ = users_app
    staying = logged_in(app, "alice", "Staying")
    leaving = logged_in(app, "alice", "Leaving")
    devices(staying, expected=2)

    leaving.get(logout)

    # Immediately: every listing re-reads the items it finds, strongly consistent.
    assert [row["user_agent"] for row in devices(staying)] == ["Staying"]


def test_expired_sessions_are_not_listed(make_app: AppFactory) -> None:
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    clock = freeze_clock(app)
    add_user_routes(app)
    active = logged_in(app, "alice", "Active")
    logged_in(app, "alice", "Idle")
    devices(active, expected=2)

    for _ in range(3):
        clock.advance(40)
        active.get("/get")  # used, so refreshed; the other one is not

    assert [row["user_agent"] for row in devices(active)] == ["Active"]


def test_a_shortened_timeout_applies_to_listings(make_app: AppFactory) -> None:
    before, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=1000)
    clock = freeze_clock(before)
    add_user_routes(before)
    logged_in(before, "alice", "Browser")
    with before.app_context():
        assert len(eventually(lambda: list_user_sessions("alice"), bool)) == 1

    # Redeployed with a shorter idle timeout: the old session is dead after 100 s.
    after, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    later = freeze_clock(after, like=clock)
    later.advance(101)
    with after.app_context():
        assert list_user_sessions("alice") == []


def test_regenerate_keeps_the_handle_agent_and_age(users_app) -> None:
    app, _ = users_app
    client = logged_in(app, "alice", "First agent")
    (before,) = devices(client, expected=1)
    old_sid = client.get_cookie("id").value

    client.environ_base["HTTP_USER_AGENT"] = "Second agent"
    client.get("/regenerate")

    assert client.get_cookie("id").value != old_sid
    (after,) = devices(client, expected=1)
    assert after["handle"] == before["handle"], "same device, same handle"
    assert after["user_agent"] == "First agent"
    assert after["created_at"] == before["created_at"]
    assert after["current"] is True


def test_a_session_moved_to_another_user_is_listed_under_that_user(users_app) -> None:
    app, _ = users_app
    client = logged_in(app, "alice", "Browser")
    (as_alice,) = devices(client, expected=1)

    client.get("/set?_user_id=bob")

    (as_bob,) = devices(client, expected=1)
    assert as_bob["handle"] != as_alice["handle"]
    with app.app_context():
        assert eventually(lambda: list_user_sessions("alice"), lambda listed: not listed) == []


# -- ending sessions ----------------------------------------------------------------------


def test_end_other_sessions_ends_only_this_users_others(users_app) -> None:
    app, _ = users_app
    alice = [logged_in(app, "alice", f"A{n}") for n in range(3)]
    bob = [logged_in(app, "bob", f"B{n}") for n in range(2)]
    devices(alice[0], expected=3)

    assert alice[0].get("/end-others").json == {"ended": 2}

    assert is_logged_in(alice[0])
    for ended in alice[1:]:
        response = ended.get("/get")
        assert response.json == {}
        assert expires_cookie(response)
    assert all(is_logged_in(client) for client in bob)
    assert [row["user_agent"] for row in devices(alice[0])] == ["A0"]
    assert len(devices(bob[0])) == 2


def test_password_change_regenerates_and_ends_the_others(users_app) -> None:
    app, _ = users_app
    here = logged_in(app, "alice", "Here")
    elsewhere = logged_in(app, "alice", "Elsewhere")
    devices(here, expected=2)
    old_sid = here.get_cookie("id").value

    assert here.get("/password-changed").json == {"ended": 1}

    assert here.get_cookie("id").value != old_sid
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    assert [row["user_agent"] for row in devices(here)] == ["Here"]


def test_end_a_session_by_its_handle(users_app) -> None:
    app, _ = users_app
    phone = logged_in(app, "alice", "Phone")
    laptop = logged_in(app, "alice", "Laptop")
    tablet = logged_in(app, "alice", "Tablet")
    listed = devices(phone, expected=3)
    laptop_handle = next(row["handle"] for row in listed if row["user_agent"] == "Laptop")

    assert phone.get(f"/end/{laptop_handle}").json == {"ended": True}

    assert not is_logged_in(laptop)
    assert is_logged_in(phone) and is_logged_in(tablet)
    assert phone.get(f"/end/{laptop_handle}").json == {"ended": False}, "already ended"


def test_another_users_handle_is_refused(users_app) -> None:
    app, _ = users_app
    alice = logged_in(app, "alice", "Alice's")
    bob = logged_in(app, "bob", "Bob's")
    (bobs,) = devices(bob, expected=1)
    devices(alice, expected=1)

    assert alice.get(f"/end/{bobs['handle']}").json == {"ended": False}

    assert is_logged_in(bob)
    assert len(devices(bob)) == 1


@pytest.mark.parametrize(
    "handle", ["A" * 22, "short", "A" * 21 + "!", "x" * 5000, "../" + "A" * 19]
)
def test_unknown_or_malformed_handles_are_refused(users_app, handle: str) -> None:
    app, calls = users_app
    alice = logged_in(app, "alice", "Browser")
    other = logged_in(app, "alice", "Other")
    devices(alice, expected=2)
    calls.clear()

    assert alice.get(f"/end/{handle}").json == {"ended": False}

    assert is_logged_in(other)
    if len(handle) != 22 or not handle.isalnum():
        assert calls["Query"] == 0 and calls["DeleteItem"] == 0, "turned away before a call"


def test_ending_ones_own_handle_is_a_logout(users_app) -> None:
    app, _ = users_app
    client = logged_in(app, "alice", "Browser")
    (mine,) = devices(client, expected=1)

    response = client.get(f"/end/{mine['handle']}")

    assert response.json == {"ended": True}
    assert expires_cookie(response)
    assert client.get("/get").json == {}


def test_admin_lists_and_ends_a_users_sessions(users_app) -> None:
    app, _ = users_app
    alice = [logged_in(app, "alice", f"A{n}") for n in range(3)]
    bob = logged_in(app, "bob", "B")

    with app.app_context():
        listed = eventually(lambda: list_user_sessions("alice"), lambda rows: len(rows) == 3)
        assert [info.current for info in listed] == [False] * 3
        assert {info.user_agent for info in listed} == {"A0", "A1", "A2"}
        assert end_user_sessions("alice") == 3
        assert list_user_sessions("alice") == []
        assert end_user_sessions("alice") == 0
        with pytest.raises(ValueError):
            list_user_sessions("")

    assert not any(is_logged_in(client) for client in alice)
    assert is_logged_in(bob)


def test_admin_calls_need_an_application_context() -> None:
    with pytest.raises(RuntimeError):
        list_user_sessions("alice")


# -- the missing index ----------------------------------------------------------------------


@pytest.fixture
def table_without_index(admin_client) -> Any:
    name = f"noindex-{time.monotonic_ns()}"
    create_table(name, client=admin_client, user_index=False)
    yield name
    admin_client.delete_table(TableName=name)


def test_missing_index_is_a_clear_error_while_sessions_keep_working(
    make_app: AppFactory, table_without_index: str
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME=table_without_index)
    add_user_routes(app)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = logged_in(app, "alice", "Browser")
    client.get("/set?cart=book")
    client.get("/regenerate")
    assert client.get("/get").json == {"_user_id": "alice", "cart": "book"}

    with pytest.raises(UserIndexMissingError) as raised:
        client.get("/devices")
    message = str(raised.value)
    assert "'user-index'" in message and table_without_index in message
    assert "flask dynamodb-session add-user-index" in message

    with app.app_context(), pytest.raises(UserIndexMissingError):
        end_user_sessions("alice")
    # The session itself is untouched by the failed call.
    assert client.get("/get").json == {"_user_id": "alice", "cart": "book"}
    client.get("/clear")
    assert client.get("/get").json == {}


def test_a_record_written_before_binding_existed_is_bound_on_its_next_write(
    users_app, admin_client, table_name: str
) -> None:
    app, _ = users_app
    client = logged_in(app, "alice", "Browser")
    # As an earlier release left it: the user key in the data, no binding attributes.
    key = storage_key(client.get_cookie("id").value)
    admin_client.update_item(
        TableName=table_name,
        Key={"id": {"S": key}},
        UpdateExpression="REMOVE user_id, handle, user_agent",
    )
    with app.app_context():
        assert eventually(lambda: list_user_sessions("alice"), lambda rows: not rows) == []

    client.get("/set?cart=book")  # any write (a change, or the periodic refresh)

    assert len(devices(client, expected=1)) == 1


def test_a_user_id_that_cannot_bind_is_logged_not_fatal(
    users_app, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = users_app

    @app.route("/odd-login")
    def odd_login() -> Any:
        sess["_user_id"] = ["not", "an", "id"]
        return "ok"

    client = browser(app, "Browser")
    assert client.get("/odd-login").status_code == 200
    assert "cannot bind the session to a user" in caplog.text
    assert client.get("/get").json == {"_user_id": ["not", "an", "id"]}
    assert client.get("/devices").json == []


TOO_LONG_USER_IDS = {
    "str of 1025 bytes": "é" * 512 + "x",
    "int of 2100 digits": 10**2099,
    "negative int of 1024 digits": -(10**1023),
}


@pytest.mark.parametrize("user_id", list(TOO_LONG_USER_IDS.values()), ids=list(TOO_LONG_USER_IDS))
def test_a_user_id_past_the_key_limit_never_makes_a_session_unwritable(
    users_app, admin_client, table_name: str, caplog: pytest.LogCaptureFixture, user_id: Any
) -> None:
    app, _ = users_app

    @app.route("/long-login")
    def long_login() -> Any:
        sess.regenerate()
        sess["_user_id"] = user_id
        sess["cart"] = ["book"]
        return "ok"

    client = browser(app, "Browser")
    client.get("/set?theme=dark")
    with caplog.at_level(logging.WARNING, logger="dynamodb_session_flask"):
        assert client.get("/long-login").status_code == 200
        assert client.get("/set?theme=light").status_code == 200
        assert client.get("/regenerate").status_code == 200
    warnings = [r for r in caplog.records if "cannot bind the session" in r.getMessage()]
    assert len(warnings) == 1, "one warning, when the id is stored"

    assert client.get("/get").json == {"_user_id": user_id, "cart": ["book"], "theme": "light"}
    (item,) = admin_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
    assert "user_id" not in item
    assert client.get("/devices").json == []
    with app.app_context(), pytest.raises(ValueError, match="at most 1024 bytes"):
        list_user_sessions(user_id)


def test_an_int_user_id_of_1024_digits_binds(users_app) -> None:
    app, _ = users_app
    user_id = 10**1023

    @app.route("/long-login")
    def long_login() -> Any:
        sess["_user_id"] = user_id
        return "ok"

    client = browser(app, "Browser")
    assert client.get("/long-login").status_code == 200
    assert len(devices(client, expected=1)) == 1


# -- with Flask-Login, whose key is the default ----------------------------------------------


def test_flask_login_sessions_are_bound_listed_and_ended(make_app: AppFactory) -> None:
    from flask_login import LoginManager, UserMixin, login_user, logout_user

    class User(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    app, _ = make_app()
    LoginManager(app).user_loader(User)
    add_user_routes(app)

    @app.route("/flask-login/<name>")
    def flask_login(name: str) -> Any:
        sess.regenerate()
        login_user(User(name))
        return "ok"

    @app.route("/flask-logout")
    def flask_logout() -> Any:
        logout_user()
        return "ok"

    desktop, laptop, phone = (browser(app, agent) for agent in ("Desktop", "Laptop", "Phone"))
    for client in (desktop, laptop, phone):
        client.get("/flask-login/7")
    assert {row["user_agent"] for row in devices(desktop, expected=3)} == {
        "Desktop",
        "Laptop",
        "Phone",
    }

    phone.get("/flask-logout")  # removes _user_id; Flask-Login's other keys may stay
    assert {row["user_agent"] for row in devices(desktop)} == {"Desktop", "Laptop"}
    assert desktop.get("/end-others").json == {"ended": 1}
    assert not is_logged_in(laptop)
    assert is_logged_in(desktop)


# -- the index trailing the table ------------------------------------------------------------


def test_a_session_lists_itself_before_the_index_catches_up(
    users_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, calls = users_app
    here = logged_in(app, "alice", "Here")
    logged_in(app, "alice", "There")
    devices(here, expected=2)
    # The index as DynamoDB may serve it a moment after a login: without this session.
    store = app.session_interface.context(app).store  # type: ignore[attr-defined]
    lagging = store.user_index_entries
    own_key = storage_key(here.get_cookie("id").value)
    monkeypatch.setattr(
        store,
        "user_index_entries",
        lambda *args, **kwargs: [e for e in lagging(*args, **kwargs) if e.key != own_key],
    )

    listed = devices(here)

    assert [(row["user_agent"], row["current"]) for row in listed] == [
        ("There", False),
        ("Here", True),
    ]


def test_a_session_ended_during_its_own_request_is_not_listed(
    users_app, admin_client, table_name: str
) -> None:
    app, _ = users_app

    @app.route("/ended-meanwhile")
    def ended_meanwhile() -> Any:
        len(sess)  # loaded while live; then another device ends it
        key = storage_key(sess.session_id)
        admin_client.delete_item(TableName=table_name, Key={"id": {"S": key}})
        return jsonify([info.user_agent for info in sess.user_sessions()])

    here = logged_in(app, "alice", "Here")
    logged_in(app, "alice", "There")
    devices(here, expected=2)

    assert here.get("/ended-meanwhile").json == ["There"]


# -- DynamoDB answering in parts -----------------------------------------------------------


@pytest.fixture
def proxied_users_app(make_app: AppFactory, proxy: FaultProxy) -> Flask:
    app = proxied_app(make_app, proxy)
    add_user_routes(app)
    return app


def test_listing_reads_every_index_page_and_retries_unprocessed_keys(
    proxied_users_app: Flask, proxy: FaultProxy
) -> None:
    app = proxied_users_app
    clients = [logged_in(app, "alice", f"Browser {n}") for n in range(4)]
    devices(clients[0], expected=4)
    # One index entry per Query page; a BatchGetItem that reads one key per call.
    proxy.page_size(1, operation="Query")
    proxy.leave_unprocessed(None, "BatchGetItem")
    proxy.reset_counts()

    listed = devices(clients[0])

    assert sorted(row["user_agent"] for row in listed) == [f"Browser {n}" for n in range(4)]
    # One page per entry (engines differ on whether an empty last page follows).
    assert proxy.count("Query") in (4, 5)
    assert proxy.count("BatchGetItem") == 4


def test_keys_left_unprocessed_after_every_attempt_are_a_503(
    proxied_users_app: Flask, proxy: FaultProxy
) -> None:
    app = proxied_users_app
    clients = [logged_in(app, "alice", f"Browser {n}") for n in range(BATCH_ATTEMPTS + 2)]
    devices(clients[0], expected=BATCH_ATTEMPTS + 2)
    proxy.leave_unprocessed(None, "BatchGetItem")
    proxy.reset_counts()

    assert clients[0].get("/devices").status_code == 503
    assert proxy.count("BatchGetItem") == BATCH_ATTEMPTS


def test_a_failing_delete_while_ending_sessions_is_a_503_naming_it(
    proxied_users_app: Flask, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    app = proxied_users_app
    staying = logged_in(app, "alice", "Staying")
    leaving = logged_in(app, "alice", "Leaving")
    devices(staying, expected=2)
    proxy.server_error(None, "DeleteItem")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert staying.get("/end-others").status_code == 503

    assert any("DynamoDB DeleteItem on table" in line for line in error_lines(caplog))
    proxy.clear()
    assert is_logged_in(leaving), "nothing was ended"
