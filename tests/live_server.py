"""A real threaded HTTP server in front of a test app, and what a browser sees of its
responses: for tests where requests of one session overlap."""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .support import cookie_id, expires_cookie

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
        return cookie_id(self)

    def expires_cookie(self) -> bool:
        return expires_cookie(self)


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
