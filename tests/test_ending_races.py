"""Ending a user's sessions while one of them is being moved to a new id (``regenerate()``,
as any login route does), through a real threaded server: the ending wins every
interleaving, whoever ends (the user from another device, an administrator, the command
line), and a stolen copy of an id cannot hide behind its victim's handle.

The interleavings are made deterministic by holding one request's client between two of
its DynamoDB calls (botocore's own event hooks on the app's client, the calls themselves
go to the real engine): the ending after its index Query, or the rotation after its
first write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance, end_user_sessions
from dynamodb_session_flask.cli import cli
from dynamodb_session_flask.ids import storage_key

from .conftest import AppFactory, counted_client, item_count
from .engines import LocalEngine
from .live_server import WAIT, LiveServer, Reply

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

sess: DynamoDbSessionInstance = session  # type: ignore[assignment]


class CallPause:
    """Holds the first of the given DynamoDB operations the client makes once armed, just
    after its answer arrived, until released."""

    def __init__(self, client: DynamoDBClient, *operations: str) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self._armed = False
        self._lock = threading.Lock()
        for operation in operations:
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._hit)

    def arm(self) -> None:
        with self._lock:
            self.reached.clear()
            self.release.clear()
            self._armed = True

    def _hit(self, **_: Any) -> None:
        with self._lock:
            if not self._armed:
                return
            self._armed = False
        self.reached.set()
        if not self.release.wait(WAIT):
            raise TimeoutError("the test never released the held call")


@dataclass
class Site:
    app: Flask
    server: LiveServer
    client: DynamoDBClient

    def login(self, user: str) -> str:
        reply = self.server.get(f"/login/{user}")
        assert reply.status == 200
        sid = reply.cookie()
        assert sid
        return sid

    def loads(self, sid: str) -> dict[str, Any]:
        data: dict[str, Any] = self.server.get("/get", sid).json()
        return data


@pytest.fixture
def site(make_app: AppFactory, engine: LocalEngine) -> Iterator[Site]:
    client, calls = counted_client(engine.endpoint_url)
    app, _ = make_app(interface=DynamoDbSession(client=client))
    proceed = threading.Event()
    loaded = threading.Event()
    passwords = {"alice": "old"}

    @app.route("/login/<user>")
    def login(user: str) -> Any:
        # As a login view does: the password is checked before the session is touched.
        if request.args.get("password", "old") != passwords.get(user):
            return "wrong password", 401
        sess.regenerate()
        sess["_user_id"] = user
        return "logged in"

    @app.route("/rotate")
    def rotate() -> Any:
        # Any route that calls regenerate(), whatever else it checks.
        sess.regenerate()
        return "rotated"

    @app.route("/end-others")
    def end_others() -> Any:
        return jsonify(ended=sess.end_other_sessions())

    @app.route("/password-changed")
    def password_changed() -> Any:
        passwords[sess["_user_id"]] = "new"
        sess.regenerate()
        return jsonify(ended=sess.end_other_sessions())

    @app.route("/slow-end-others")
    def slow_end_others() -> Any:
        len(sess)
        loaded.set()
        if not proceed.wait(WAIT):
            raise TimeoutError("the test never let the slow request proceed")
        return jsonify(ended=sess.end_other_sessions())

    @app.route("/admin-end/<user>")
    def admin_end(user: str) -> Any:
        return jsonify(ended=end_user_sessions(user))

    @app.route("/rotate-then-list")
    def rotate_then_list() -> Any:
        sess.regenerate()
        before = [info.current for info in sess.user_sessions()]
        sess.save()
        after = [info.current for info in sess.user_sessions()]
        return jsonify(before=sorted(before), after=sorted(after), new=sess.session_id)

    app.config["test_gates"] = (loaded, proceed)
    server = LiveServer(app)
    try:
        yield Site(app, server, client)
    finally:
        proceed.set()
        server.stop()


def end_by_cli(site: Site, user: str) -> Reply:
    result = site.app.test_cli_runner().invoke(cli, ["end-user", user])
    assert result.exit_code == 0, result.output
    return Reply(200, result.output.encode(), [])


#: Who ends alice's sessions: the user from another device, or an administrator.
ENDINGS: dict[str, Callable[[Site, str], Reply]] = {
    "end_other_sessions": lambda site, caller: site.server.get("/end-others", caller),
    "password_change": lambda site, caller: site.server.get("/password-changed", caller),
    "end_user_sessions": lambda site, _: site.server.get("/admin-end/alice"),
    "command_line": lambda site, _: end_by_cli(site, "alice"),
}


def caller_survives(ending: str) -> bool:
    return ending in ("end_other_sessions", "password_change")


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_session_rotating_between_the_endings_query_and_delete_is_ended(
    site: Site, admin_client: DynamoDBClient, table_name: str, ending: str
) -> None:
    """The rotation ends the old record after the ending listed it and before the ending
    deletes it: the ending follows the handle to the new record."""
    victim = site.login("alice")
    attacker = site.login("alice")
    after_query = CallPause(site.client, "Query")
    after_query.arm()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(ENDINGS[ending], site, victim)
        assert after_query.reached.wait(WAIT), "the ending never queried the index"
        rotated = site.server.get("/rotate", attacker)
        after_query.release.set()
        ended = pending.result(timeout=2 * WAIT)

    assert rotated.status == 200
    moved = rotated.cookie()
    assert moved and moved != attacker
    assert site.loads(moved) == {}, "the rotated session escaped the ending"
    assert site.loads(attacker) == {}
    if caller_survives(ending):
        assert ended.json() == {"ended": 1}
        assert item_count(admin_client, table_name) == 1
    else:
        assert item_count(admin_client, table_name) == 0
    assert site.loads(victim) == ({"_user_id": "alice"} if ending == "end_other_sessions" else {})


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_ending_made_between_a_rotations_two_writes_ends_it(
    site: Site, admin_client: DynamoDBClient, table_name: str, ending: str
) -> None:
    """The whole ending runs while a rotation has made its first write and not its second:
    whichever write that is, the session must not come out of it alive."""
    victim = site.login("alice")
    attacker = site.login("alice")
    first_write = CallPause(site.client, "PutItem", "DeleteItem")
    first_write.arm()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(site.server.get, "/rotate", attacker)
        assert first_write.reached.wait(WAIT), "the rotation never wrote"
        ENDINGS[ending](site, victim)
        first_write.release.set()
        rotated = pending.result(timeout=2 * WAIT)

    assert rotated.status == 200
    moved = rotated.cookie()
    if moved:
        assert site.loads(moved) == {}, "the rotated session escaped the ending"
    assert site.loads(attacker) == {}
    assert item_count(admin_client, table_name) == (1 if caller_survives(ending) else 0)


def test_password_change_beats_a_crowd_of_attackers_logging_in(
    site: Site, admin_client: DynamoDBClient, table_name: str
) -> None:
    """The password-change view of docs/per-user.md while 20 sessions keep logging in again
    with the old password (each login rotates): once it returns, none of them loads the
    user."""
    victim = site.login("alice")
    attackers = [site.login("alice") for _ in range(20)]
    stop = threading.Event()
    current = list(attackers)

    def keep_logging_in(index: int) -> None:
        while not stop.is_set():
            reply = site.server.get("/login/alice?password=old", current[index])
            if reply.status == 401 or reply.expires_cookie():
                return
            current[index] = reply.cookie() or current[index]

    with ThreadPoolExecutor(max_workers=len(attackers)) as pool:
        running = [pool.submit(keep_logging_in, i) for i in range(len(attackers))]
        changed = site.server.get("/password-changed", victim)
        survivors_at_return = [
            sid for sid in current + attackers if sid and site.loads(sid).get("_user_id")
        ]
        stop.set()
        for future in running:
            future.result(timeout=2 * WAIT)

    assert changed.status == 200
    new_victim = changed.cookie()
    assert new_victim and site.loads(new_victim) == {"_user_id": "alice"}
    assert survivors_at_return == []
    # A login still in flight when the ending returned re-read a record that was gone.
    assert [sid for sid in current if site.loads(sid).get("_user_id")] == []


def test_a_stolen_copy_rotated_under_the_victims_handle_is_ended(
    site: Site, admin_client: DynamoDBClient, table_name: str
) -> None:
    """The victim's request loads its session; the holder of a stolen copy of the same id
    rotates it meanwhile, so the victim's handle now sits on the thief's new record. The
    victim's ending must end that record, and, its own id being known to someone else,
    log the victim out too (fail closed)."""
    victim = site.login("alice")
    loaded, proceed = site.app.config["test_gates"]

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(site.server.get, "/slow-end-others", victim)
        assert loaded.wait(WAIT), "the victim's request never loaded its session"
        stolen = site.server.get("/rotate", victim)
        proceed.set()
        ended = pending.result(timeout=2 * WAIT)

    thief = stolen.cookie()
    assert thief and thief != victim
    assert ended.json() == {"ended": 1}
    assert site.loads(thief) == {}, "the thief stayed logged in as the victim"
    assert ended.expires_cookie(), "the victim, whose id is known to a thief, is logged out"
    assert site.loads(victim) == {}
    assert item_count(admin_client, table_name) == 0


def test_user_sessions_after_regenerate_sends_no_raw_id_and_marks_current(
    site: Site, table_name: str
) -> None:
    """``user_sessions()`` right after ``regenerate()``, and after the move is saved: every
    DynamoDB call names storage keys only, and this session is the one ``current``."""
    sid = site.login("alice")
    site.login("alice")
    sent: list[str] = []
    site.client.meta.events.register(
        "provide-client-params.dynamodb", lambda params, **_: sent.append(repr(params))
    )

    reply = site.server.get("/rotate-then-list", sid)

    body = reply.json()
    assert body["before"] == [False, True]
    assert body["after"] == [False, True]
    assert sent, "no DynamoDB call was seen"
    for raw in (sid, body["new"]):
        assert all(raw not in params for params in sent), "a raw session id reached DynamoDB"
    assert any(storage_key(body["new"]) in params for params in sent)


@pytest.mark.parametrize("ending", ["end_other_sessions", "password_change"])
def test_a_stolen_copy_moved_while_the_ending_runs_cannot_escape(
    site: Site, admin_client: DynamoDBClient, table_name: str, ending: str
) -> None:
    """The thief's request has loaded the shared id and moves it only once the victim's
    ending has listed the user's sessions (so the listing never shows the thief's new
    record): the move must fail, since the ending fenced the record (or, after
    ``regenerate()``, moved it first)."""
    victim = site.login("alice")
    after_load = CallPause(site.client, "GetItem")
    after_query = CallPause(site.client, "Query")

    with ThreadPoolExecutor(max_workers=2) as pool:
        after_load.arm()
        thief = pool.submit(site.server.get, "/rotate", victim)
        assert after_load.reached.wait(WAIT), "the thief's request never loaded the session"
        after_query.arm()
        pending = pool.submit(ENDINGS[ending], site, victim)
        assert after_query.reached.wait(WAIT), "the ending never queried the index"
        after_load.release.set()
        moved = thief.result(timeout=2 * WAIT)
        after_query.release.set()
        ended = pending.result(timeout=2 * WAIT)

    assert ended.status == 200
    thief_id = moved.cookie()
    if thief_id:
        assert site.loads(thief_id) == {}, "the thief escaped with the victim's session"
    kept = ended.cookie() or victim
    assert site.loads(kept) == {"_user_id": "alice"}, "the victim won and stays logged in"
    assert item_count(admin_client, table_name) == 1
