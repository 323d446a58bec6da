"""Concurrent requests of one session, through a real threaded HTTP server.

Views that hold the session open (on a barrier or an event) make the interleavings that
matter deterministic: every request has loaded the record before any of them saves, or a
logout lands while a slower request of the same session is still running.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request, session
from werkzeug.http import parse_cookie
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .conftest import AppFactory, CallCounter, item_count

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: Longest any thread waits on a gate or an answer; only reached when something is broken.
WAIT = 10.0


class _QuietHandler(WSGIRequestHandler):
    # One access-log line per request would only bury a failure's output.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class Reply:
    """What a browser would see of one response."""

    status: int
    body: bytes
    set_cookies: list[str]

    def json(self) -> Any:
        return json.loads(self.body)

    def cookie(self) -> str | None:
        """The value the response gives the ``id`` cookie, ``None`` when it sets none."""
        for header in self.set_cookies:
            parsed = parse_cookie(header)
            if "id" in parsed:
                return parsed["id"]
        return None

    def expires_cookie(self) -> bool:
        return self.cookie() == "" and any(
            "Expires=Thu, 01 Jan 1970" in header for header in self.set_cookies
        )


class LiveServer:
    """The app behind werkzeug's threaded development server on a free local port."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def get(self, path: str, sid: str | None = None) -> Reply:
        # A connection per request, like independent browser tabs.
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=2 * WAIT)
        try:
            conn.request("GET", path, headers={"Cookie": f"id={sid}"} if sid else {})
            response = conn.getresponse()
            return Reply(response.status, response.read(), response.msg.get_all("Set-Cookie") or [])
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(WAIT)
        self.server.server_close()


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
