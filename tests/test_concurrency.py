"""Concurrent requests of one session, through a real threaded HTTP server.

Views that hold the session open (on a barrier or an event) make the interleavings that
matter deterministic: every request has loaded the record before any of them saves, or a
logout lands while a slower request of the same session is still running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session

from .conftest import AppFactory, CallCounter, item_count
from .live_server import WAIT, LiveServer, Reply

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass
class Gates:
    """Synchronisation points the slow views wait on; each test sets what it needs."""

    barrier: threading.Barrier = field(default_factory=lambda: threading.Barrier(1))
    loaded: threading.Event = field(default_factory=threading.Event)
    proceed: threading.Event = field(default_factory=threading.Event)

    def release_all(self) -> None:
        self.proceed.set()
        self.barrier.abort()


def add_slow_routes(app: Flask, gates: Gates) -> None:
    @app.route("/slow-set")
    def slow_set() -> Any:
        len(session)  # load the record now, so every request starts from the same state
        gates.barrier.wait(WAIT)
        for key, value in request.args.items():
            session[key] = value
        return jsonify(dict(session))

    @app.route("/slow-hold")
    def slow_hold() -> Any:
        len(session)
        gates.loaded.set()
        if not gates.proceed.wait(WAIT):
            raise TimeoutError("the test never let the slow request proceed")
        for key, value in request.args.items():
            session[key] = value
        return "held"

    @app.route("/slow-regenerate")
    def slow_regenerate() -> Any:
        len(session)
        gates.loaded.set()
        if not gates.proceed.wait(WAIT):
            raise TimeoutError("the test never let the slow request proceed")
        session.regenerate()  # type: ignore[attr-defined]
        for key, value in request.args.items():
            session[key] = value
        return "regenerated"

    @app.route("/slow-create")
    def slow_create() -> Any:
        len(session)
        gates.barrier.wait(WAIT)
        session.create()  # type: ignore[attr-defined]
        for key, value in request.args.items():
            session[key] = value
        return "created"


@dataclass
class Live:
    server: LiveServer
    gates: Gates
    calls: CallCounter

    def new_session(self, query: str) -> str:
        reply = self.server.get(f"/set?{query}")
        assert reply.status == 200
        sid = reply.cookie()
        assert sid
        return sid


@pytest.fixture
def live(make_app: AppFactory) -> Iterator[Live]:
    app, calls = make_app()
    with serve_live(app, calls) as running:
        yield running


@contextmanager
def serve_live(app: Flask, calls: CallCounter) -> Iterator[Live]:
    """``app`` with the slow routes, behind a threaded server, until the block ends."""
    gates = Gates()
    add_slow_routes(app, gates)
    server = LiveServer(app)
    try:
        yield Live(server, gates, calls)
    finally:
        # A failed assertion must not leave views blocked, or shutdown would hang.
        gates.release_all()
        server.stop()


def in_parallel(requests: list[Callable[[], Reply]]) -> list[Reply]:
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(send) for send in requests]
        return [future.result(timeout=2 * WAIT) for future in futures]


# -- different keys -------------------------------------------------------------------


def test_concurrent_changes_to_different_keys_all_survive(
    live: Live, admin_client: DynamoDBClient, table_name: str
) -> None:
    sid = live.new_session("base=0")
    threads = 8
    live.gates.barrier = threading.Barrier(threads)

    replies = in_parallel(
        [partial(live.server.get, f"/slow-set?k{i}=v{i}", sid) for i in range(threads)]
    )

    assert [reply.status for reply in replies] == [200] * threads
    # Every response keeps the same id; none ends the session.
    assert {reply.cookie() for reply in replies} <= {sid, None}
    expected = {"base": "0", **{f"k{i}": f"v{i}" for i in range(threads)}}
    assert live.server.get("/get", sid).json() == expected
    assert item_count(admin_client, table_name) == 1


# -- the same key ---------------------------------------------------------------------


def test_concurrent_changes_to_the_same_key_leave_one_readable_value(
    live: Live, admin_client: DynamoDBClient, table_name: str
) -> None:
    sid = live.new_session("k=initial")
    threads = 8
    live.gates.barrier = threading.Barrier(threads)
    written = {f"value-{i}" for i in range(threads)}

    replies = in_parallel(
        [partial(live.server.get, f"/slow-set?k={v}", sid) for v in sorted(written)]
    )

    assert [reply.status for reply in replies] == [200] * threads
    after = live.server.get("/get", sid)
    assert after.status == 200
    assert after.json().keys() == {"k"}
    assert after.json()["k"] in written
    assert item_count(admin_client, table_name) == 1


# -- logout during a slower request ---------------------------------------------------


@pytest.mark.parametrize("logout", ["/clear", "/abandon"])
def test_logout_wins_over_a_slower_request_of_the_same_session(
    live: Live, admin_client: DynamoDBClient, table_name: str, logout: str
) -> None:
    sid = live.new_session("user=alice")
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(live.server.get, "/slow-hold?late=write", sid)
        assert live.gates.loaded.wait(WAIT), "the slow request never loaded the session"

        logged_out = live.server.get(logout, sid)
        live.gates.proceed.set()
        slow_reply = slow.result(timeout=2 * WAIT)

    assert logged_out.status == 200
    assert logged_out.expires_cookie()
    # The slower request finishes normally but cannot bring the session back: its write is
    # refused and its response tells the browser to drop the cookie.
    assert slow_reply.status == 200
    assert slow_reply.expires_cookie(), slow_reply.set_cookies
    assert item_count(admin_client, table_name) == 0
    again = live.server.get("/get", sid)
    assert again.json() == {}
    assert again.expires_cookie()
    assert item_count(admin_client, table_name) == 0


# -- regenerate() racing a logout -----------------------------------------------------


def regenerate_while(live: Live, sid: str, other: str, query: str = "") -> tuple[Reply, Reply]:
    """Request B loads the session and waits; request A (``other``) runs to completion;
    then B calls ``regenerate()`` (and sets ``query``'s values) and saves."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(live.server.get, f"/slow-regenerate?{query}", sid)
        assert live.gates.loaded.wait(WAIT), "the slow request never loaded the session"
        other_reply = live.server.get(other, sid)
        live.gates.proceed.set()
        return other_reply, slow.result(timeout=2 * WAIT)


@pytest.mark.parametrize("logout", ["/clear", "/abandon"])
@pytest.mark.parametrize("query", ["", "login=bob"])
def test_regenerate_cannot_undo_a_logout(
    live: Live, admin_client: DynamoDBClient, table_name: str, logout: str, query: str
) -> None:
    sid = live.new_session("user=alice")

    logged_out, rotated = regenerate_while(live, sid, logout, query)

    assert logged_out.status == 200 and logged_out.expires_cookie()
    assert rotated.status == 200
    # No new id: the browser is told to drop the one it has.
    assert rotated.expires_cookie(), rotated.set_cookies
    assert live.server.get("/get", sid).json() == {}
    assert item_count(admin_client, table_name) == 0


def test_regenerate_keeps_what_a_concurrent_request_removed_removed(
    live: Live, admin_client: DynamoDBClient, table_name: str
) -> None:
    # Flask-Login's logout_user() removes its key rather than clearing the session.
    sid = live.new_session("user=alice&cart=book")

    popped, rotated = regenerate_while(live, sid, "/delete/user", "seen=yes")

    assert popped.status == 200 and rotated.status == 200
    new_sid = rotated.cookie()
    assert new_sid and new_sid != sid
    assert live.server.get("/get", new_sid).json() == {"cart": "book", "seen": "yes"}
    assert live.server.get("/get", sid).json() == {}
    assert item_count(admin_client, table_name) == 1


def test_regenerate_keeps_keys_a_concurrent_request_set(
    live: Live, admin_client: DynamoDBClient, table_name: str
) -> None:
    sid = live.new_session("user=alice")

    _, rotated = regenerate_while(live, sid, "/set?theme=dark", "seen=yes")

    new_sid = rotated.cookie()
    assert new_sid and new_sid != sid
    expected = {"user": "alice", "theme": "dark", "seen": "yes"}
    assert live.server.get("/get", new_sid).json() == expected
    assert item_count(admin_client, table_name) == 1


# -- create() next to another request -------------------------------------------------


def test_create_and_concurrent_requests_do_not_mix_data(
    live: Live, admin_client: DynamoDBClient, table_name: str
) -> None:
    old_sid = live.new_session("owner=old")
    creators = 4
    writers = 4
    live.gates.barrier = threading.Barrier(creators + writers)

    requests: list[Callable[[], Reply]] = [
        partial(live.server.get, f"/slow-create?created-{i}=yes", old_sid) for i in range(creators)
    ]
    requests += [
        partial(live.server.get, f"/slow-set?seen-{i}=yes", old_sid) for i in range(writers)
    ]
    replies = in_parallel(requests)

    assert [reply.status for reply in replies] == [200] * (creators + writers)
    new_sids = [reply.cookie() for reply in replies[:creators]]
    assert all(new_sids) and len(set(new_sids)) == creators
    assert old_sid not in new_sids
    for i, new_sid in enumerate(new_sids):
        assert live.server.get("/get", new_sid).json() == {f"created-{i}": "yes"}
    # create() leaves the old session alone, and the old session gets none of the new data.
    expected_old = {"owner": "old", **{f"seen-{i}": "yes" for i in range(writers)}}
    assert live.server.get("/get", old_sid).json() == expected_old
    assert item_count(admin_client, table_name) == 1 + creators
