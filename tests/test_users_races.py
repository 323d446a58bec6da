"""Ending a user's sessions while requests of those sessions are still running, through a
real threaded HTTP server: an ended session must never come back."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import jsonify, session

from .conftest import AppFactory, item_count
from .live_server import WAIT
from .test_concurrency import Live, serve_live
from .test_users import eventually


@pytest.fixture
def live(make_app: AppFactory) -> Iterator[Live]:
    app, calls = make_app()

    @app.route("/end-others")
    def end_others() -> Any:
        return jsonify(ended=session.end_other_sessions())  # type: ignore[attr-defined]

    @app.route("/count")
    def count() -> Any:
        return jsonify(len(session.user_sessions()))  # type: ignore[attr-defined]

    with serve_live(app, calls) as running:
        yield running


@pytest.mark.parametrize("slow", ["/slow-hold?late=write", "/slow-regenerate?late=write"])
def test_a_request_in_flight_cannot_bring_an_ended_session_back(
    live: Live, admin_client, table_name: str, slow: str
) -> None:
    here = live.new_session("_user_id=alice")
    there = live.new_session("_user_id=alice&cart=book")
    assert eventually(lambda: live.server.get("/count", here).json(), lambda n: n == 2) == 2

    with ThreadPoolExecutor(max_workers=1) as pool:
        # A request of the other device loads its session, then takes its time.
        pending = pool.submit(live.server.get, slow, there)
        assert live.gates.loaded.wait(WAIT), "the slow request never loaded the session"
        ended = live.server.get("/end-others", here)
        live.gates.proceed.set()
        late = pending.result(timeout=2 * WAIT)

    assert ended.json() == {"ended": 1}
    # The late request's write (an update, or regenerate()'s move to a new id) is refused,
    # and its response tells the browser to drop the cookie.
    assert late.status == 200
    assert late.expires_cookie(), late.set_cookies
    assert item_count(admin_client, table_name) == 1, "only this device's session is left"
    assert live.server.get("/get", there).json() == {}
    assert live.server.get("/get", here).json() == {"_user_id": "alice"}
