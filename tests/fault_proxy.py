"""A fault-injecting HTTP reverse proxy to put between a boto3 client and a local engine.

Local engines never throttle, fail or hang, so the proxy fakes what DynamoDB does under
stress: throttling and 500 answers with DynamoDB's exact bodies, slow answers, connections
closed without an answer before the request reaches the engine (``drop``) and after the
engine applied it (``lose_answer``: the answer is read from the engine and thrown away, and
the client's connection is reset, so botocore retries a write that already happened); and
what it answers a caller whose IAM policy lacks a permission. It also reshapes answers the
way DynamoDB does at a scale no test table reaches: Scan and Query pages cut short (DynamoDB
stops a page at 1 MB), and batch requests only partly processed (a throttled BatchWriteItem
or BatchGetItem hands the rest back as ``UnprocessedItems`` or ``UnprocessedKeys``).
Everything else is forwarded unchanged.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable
from urllib.parse import urlsplit

__all__ = [
    "ACCESS_DENIED_BODY",
    "INTERNAL_SERVER_ERROR_BODY",
    "THROTTLING_BODY",
    "FaultProxy",
    "LostAnswer",
    "RequestPredicate",
    "is_conditional",
]

THROTTLING_BODY = (
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
    b'"message":"The level of configured provisioned throughput for the table was exceeded. '
    b'Consider increasing your provisioning level with the UpdateTable API."}'
)
INTERNAL_SERVER_ERROR_BODY = (
    b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
    b'"message":"Internal server error"}'
)
ACCESS_DENIED_BODY = (
    b'{"__type":"com.amazon.coral.service#AccessDeniedException",'
    b'"Message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: '
    b"dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:123456789012:table/sessions "
    b'because no identity-based policy allows the dynamodb:Scan action"}'
)

# Hop-by-hop headers describe one connection, not the message, so each leg sets its own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_UPSTREAM_TIMEOUT = 60.0


#: Decides from a request's JSON body (``{}`` when it has none, or none that parses)
#: whether a fault applies to it.
RequestPredicate = Callable[[Mapping[str, Any]], bool]


def is_conditional(request: Mapping[str, Any]) -> bool:
    """A request that carries a ``ConditionExpression`` (a conditional write)."""
    return "ConditionExpression" in request


@dataclass(frozen=True)
class LostAnswer:
    """One answer the engine gave and ``lose_answer`` kept from the client."""

    operation: str
    #: The engine's HTTP status: 200 means it applied the request.
    status: int
    #: The request's JSON body, as the engine received it.
    request: Mapping[str, Any]
    #: The engine's answer, as the client would have received it.
    body: bytes

    @property
    def applied(self) -> bool:
        return self.status == 200


#: Faults that change what the engine is asked and answers, rather than answering for it.
_RESHAPING = ("page", "unprocessed")


@dataclass
class _Fault:
    # "throttle", "server_error", "deny", "delay", "drop", "lose_answer", or one of
    # _RESHAPING
    kind: str
    remaining: int | None
    operation: str | None
    seconds: float = 0.0
    #: Items per page for "page".
    limit: int = 0
    when: RequestPredicate | None = None
    rate: float = 1.0
    chosen: random.Random = field(default_factory=random.Random)

    def matches(self, operation: str, request: Mapping[str, Any]) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        if self.when is not None and not self.when(request):
            return False
        return self.rate >= 1.0 or self.chosen.random() < self.rate


def _json_body(body: bytes) -> Mapping[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _operation(target: str | None, method: str, path: str) -> str:
    if target:
        return target.rsplit(".", 1)[-1]
    return f"{method} {path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (read timeouts) or proxies that drop are the point of these
        # tests; a traceback for every broken pipe would only hide real failures.
        pass


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps botocore's pooled connections alive, as with real DynamoDB.
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)
            if self._upstream is not None:
                self._upstream.close()
                self._upstream = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        proxy = self.server.proxy
        operation = _operation(self.headers.get("X-Amz-Target"), self.command, self.path)
        request = _json_body(body)
        action, reshaping = proxy._begin(operation, request)
        if action == "drop":
            self._abort()
            return
        if action == "throttle":
            self._reply_error(400, "Bad Request", THROTTLING_BODY)
            return
        if action == "server_error":
            self._reply_error(500, "Internal Server Error", INTERNAL_SERVER_ERROR_BODY)
            return
        if action == "deny":
            self._reply_error(400, "Bad Request", ACCESS_DENIED_BODY)
            return
        if proxy._stopping.is_set():
            self._abort()
            return
        if action == "lose_answer":
            self._forward_and_lose_answer(operation, request, body)
            return
        held_back: dict[str, Any] = {}
        for fault in reshaping:
            body, held_back = _reshape_request(fault, operation, body, held_back)
        self._forward(body, held_back)

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_HEAD = _handle

    def _abort(self) -> None:
        # Linger 0 turns close() into a TCP reset, like a load balancer cutting the line.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()

    def _reply_error(self, status: int, reason: str, body: bytes) -> None:
        self.send_response_only(status, reason)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper()[:52])
        # botocore verifies this checksum for DynamoDB when present, as DynamoDB sends it.
        self.send_header("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))
        self.end_headers()
        self.wfile.write(body)

    def _upstream_connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._upstream is not None:
            return self._upstream, True
        host, port = self.server.proxy._upstream_address
        self._upstream = http.client.HTTPConnection(host, port, timeout=_UPSTREAM_TIMEOUT)
        return self._upstream, False

    def _send_upstream(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        while True:
            conn, reused = self._upstream_connection()
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    # The body may have been reshaped: its length is set below.
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        conn.putheader(name, value)
                if body or "Content-Length" in self.headers:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                response = conn.getresponse()
                data = response.read()
                return response, data
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                conn.close()
                self._upstream = None
                # A kept-alive upstream connection may have been closed while idle (for
                # instance by an engine restart); the request never reached the engine.
                if not reused:
                    raise

    def _forward_and_lose_answer(
        self, operation: str, request: Mapping[str, Any], body: bytes
    ) -> None:
        """The engine gets the request and answers; the client gets a reset instead."""
        try:
            response, data = self._send_upstream(body)
        except OSError:
            self._abort()
            return
        self.server.proxy._lost(LostAnswer(operation, response.status, request, data))
        self._abort()

    def _forward(self, body: bytes, held_back: dict[str, Any]) -> None:
        try:
            response, data = self._send_upstream(body)
        except OSError:
            # An unreachable engine should look to the client like an unreachable endpoint,
            # not like an HTTP answer DynamoDB never gives.
            self._abort()
            return
        if response.will_close and self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        if held_back and response.status == 200:
            # What was held back is handed back as DynamoDB hands back what it did not do.
            answer = json.loads(data)
            answer.update(held_back)
            data = json.dumps(answer).encode()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() not in (
                "content-length",
                "x-amz-crc32",
            ):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        # botocore checks this checksum when present: it must be the one of the body sent.
        self.send_header("x-amz-crc32", str(zlib.crc32(data) & 0xFFFFFFFF))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class FaultProxy:
    """Reverse proxy on 127.0.0.1 forwarding to ``upstream_url``, with injectable faults.

    Each fault applies to the next ``n`` matching requests (all of them while ``n`` is None,
    until ``clear()``), optionally only to one DynamoDB operation such as "GetItem", and
    with ``rate`` below 1 only to that share of them, chosen at random (``seed`` makes the
    choice repeatable). Delays add up with other faults; the first matching
    throttle/server_error/deny/drop/lose_answer decides the answer.

    ``requests`` counts every request by operation, whatever was done to it; ``injected``
    counts the faults applied, by kind; ``lost_answers`` lists what ``lose_answer`` kept
    from the client, oldest first.
    """

    def __init__(self, upstream_url: str, *, seed: int | None = None) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"upstream must be an http:// URL, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream_address = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._random = random.Random(seed)
        self.requests: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lost_answers: list[LostAnswer] = []

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FaultProxy->{self.upstream_url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        # Kept-alive client connections would otherwise hold handler threads forever.
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Fault controls.

    def throttle(
        self, n: int | None = None, operation: str | None = None, *, rate: float = 1.0
    ) -> None:
        self._add(_Fault("throttle", n, operation, rate=rate))

    def server_error(
        self, n: int | None = None, operation: str | None = None, *, rate: float = 1.0
    ) -> None:
        self._add(_Fault("server_error", n, operation, rate=rate))

    def deny(self, n: int | None = None, operation: str | None = None) -> None:
        """Answer as DynamoDB does when the caller's IAM policy lacks the permission."""
        self._add(_Fault("deny", n, operation))

    def delay(
        self,
        seconds: float,
        n: int | None = None,
        operation: str | None = None,
        *,
        rate: float = 1.0,
    ) -> None:
        self._add(_Fault("delay", n, operation, seconds, rate=rate))

    def drop(
        self, n: int | None = None, operation: str | None = None, *, rate: float = 1.0
    ) -> None:
        """Reset the client's connection before the request reaches the engine."""
        self._add(_Fault("drop", n, operation, rate=rate))

    def lose_answer(
        self,
        operation: str | None,
        times: int | None = 1,
        *,
        when: RequestPredicate | None = None,
        rate: float = 1.0,
    ) -> None:
        """Forward the next ``times`` requests of ``operation`` (``None``: any operation,
        and every matching request until ``clear()`` when ``times`` is None) to the engine,
        read its answer, then reset the client's connection without sending it: the engine
        applied the request, and the client sees a connection error, which botocore
        retries. ``when`` restricts the fault to requests whose JSON body it accepts, e.g.
        ``is_conditional``. Each answer lost is appended to ``lost_answers``.
        """
        self._add(_Fault("lose_answer", times, operation, when=when, rate=rate))

    def page_size(self, limit: int, n: int | None = None, operation: str | None = None) -> None:
        """Cut Scan and Query pages after ``limit`` items, as DynamoDB cuts them at 1 MB:
        the engine itself answers with a ``LastEvaluatedKey`` to go on from."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._add(_Fault("page", n, operation, limit=limit))

    def leave_unprocessed(self, n: int | None = None, operation: str | None = None) -> None:
        """Let a BatchWriteItem or BatchGetItem do only its first request per table and
        hand the others back unprocessed, as DynamoDB does when it throttles a batch."""
        self._add(_Fault("unprocessed", n, operation))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, operation: str) -> int:
        with self._lock:
            return self.requests[operation]

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.injected.clear()
            self.lost_answers.clear()

    def _add(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 0:
            raise ValueError("n must be None or >= 0")
        if not 0.0 <= fault.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        fault.chosen = random.Random(self._random.random())
        with self._lock:
            self._faults.append(fault)

    def _lost(self, answer: LostAnswer) -> None:
        with self._lock:
            self.lost_answers.append(answer)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _begin(self, operation: str, request: Mapping[str, Any]) -> tuple[str | None, list[_Fault]]:
        """Count the request, sleep for matching delays; return the fault to answer with,
        and those that reshape the request and its answer."""
        delay = 0.0
        action: str | None = None
        reshaping: list[_Fault] = []
        with self._lock:
            self.requests[operation] += 1
            for fault in self._faults:
                if not fault.matches(operation, request):
                    continue
                if fault.kind == "delay":
                    delay += fault.seconds
                elif fault.kind in _RESHAPING:
                    if operation not in _RESHAPED_OPERATIONS[fault.kind]:
                        continue
                    reshaping.append(fault)
                elif action is None:
                    action = fault.kind
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.injected[fault.kind] += 1
            self._faults = [f for f in self._faults if f.remaining is None or f.remaining > 0]
        if delay:
            # Waiting on the event lets stop() cut a long delay short.
            self._stopping.wait(delay)
        return action, reshaping


_RESHAPED_OPERATIONS = {
    "page": ("Scan", "Query"),
    "unprocessed": ("BatchWriteItem", "BatchGetItem"),
}


def _reshape_request(
    fault: _Fault, operation: str, body: bytes, held_back: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """The request to send the engine instead, and what to add to its answer."""
    request = json.loads(body)
    if fault.kind == "page":
        request["Limit"] = min(fault.limit, request.get("Limit", fault.limit))
        return json.dumps(request).encode(), held_back
    held: dict[str, Any] = {}
    for table, asked in request["RequestItems"].items():
        if operation == "BatchWriteItem":
            if len(asked) > 1:
                request["RequestItems"][table], held[table] = asked[:1], asked[1:]
        elif len(asked["Keys"]) > 1:
            held[table] = {**asked, "Keys": asked["Keys"][1:]}
            asked["Keys"] = asked["Keys"][:1]
    name = "UnprocessedItems" if operation == "BatchWriteItem" else "UnprocessedKeys"
    return json.dumps(request).encode(), {**held_back, name: held} if held else held_back
