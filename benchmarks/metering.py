"""What each request costs: DynamoDB calls and capacity units seen from outside a boto3
client, and the app's own CPU and wall time per request.

Nothing here touches the code under test. Calls are counted with botocore's event hooks on
the client the app was given, so the figures are what DynamoDB would bill that app, whatever
library made the calls; CPU is the request thread's own time, so the engine's work (a
separate process) and the benchmark driver's work are left out.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from botocore.client import BaseClient
    from botocore.model import OperationModel

#: Operations whose CapacityUnits are read units when the engine does not split them.
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@dataclass
class Usage:
    """DynamoDB calls by operation and the capacity units they consumed."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op not in READ_OPERATIONS)

    def copy(self) -> Usage:
        return Usage(Counter(self.calls), Counter(self.errors), self.read_units, self.write_units)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.errors + other.errors,
            self.read_units + other.read_units,
            self.write_units + other.write_units,
        )

    def __sub__(self, other: Usage) -> Usage:
        calls = Counter(self.calls)
        calls.subtract(other.calls)
        errors = Counter(self.errors)
        errors.subtract(other.errors)
        return Usage(
            +calls,
            +errors,
            self.read_units - other.read_units,
            self.write_units - other.write_units,
        )


class Meter:
    """Counts the DynamoDB calls of the clients it is attached to.

    It asks DynamoDB for ``ReturnConsumedCapacity="TOTAL"`` on every call that accepts it,
    so capacity comes from the engine's own accounting (exact by item size on dynalite and
    DynamoDB), never from an estimate made here. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = Usage()

    def attach(self, client: BaseClient) -> None:
        # Each botocore client owns a copy of its session's event hooks, so this meters
        # exactly this client and nothing built later from the same session.
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._ask_for_capacity)
        events.register("after-call.dynamodb", self._record)

    def snapshot(self) -> Usage:
        with self._lock:
            return self._usage.copy()

    @staticmethod
    def _ask_for_capacity(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        shape = model.input_shape
        if shape is not None and "ReturnConsumedCapacity" in shape.members:
            if params.get("ReturnConsumedCapacity") != "INDEXES":
                params["ReturnConsumedCapacity"] = "TOTAL"

    def _record(
        self, http_response: Any, parsed: dict[str, Any], model: OperationModel, **_: Any
    ) -> None:
        operation = model.name
        consumed = parsed.get("ConsumedCapacity") or []
        if isinstance(consumed, dict):
            consumed = [consumed]
        read = write = 0.0
        for entry in consumed:
            if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
                read += float(entry.get("ReadCapacityUnits", 0.0))
                write += float(entry.get("WriteCapacityUnits", 0.0))
            elif operation in READ_OPERATIONS:
                read += float(entry.get("CapacityUnits", 0.0))
            else:
                write += float(entry.get("CapacityUnits", 0.0))
        # Failed calls (a condition that did not hold, throttling) are billed and counted too.
        failed = getattr(http_response, "status_code", 200) >= 300
        with self._lock:
            self._usage.calls[operation] += 1
            if failed:
                self._usage.errors[operation] += 1
            self._usage.read_units += read
            self._usage.write_units += write


@dataclass
class RequestTiming:
    """The app's thread CPU time and wall time of the last request, in seconds."""

    cpu: float = 0.0
    wall: float = 0.0


class TimedWsgi:
    """WSGI middleware timing the whole Flask request: session open, view, session save.

    The body is drained inside the measurement, so a lazily produced body is not left out.
    Sequential use only: it keeps the last request's figures.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.last = RequestTiming()
        self._cpu: Callable[[], float] = time.thread_time
        self._wall: Callable[[], float] = time.perf_counter

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        cpu, wall = self._cpu(), self._wall()
        result = self.app(environ, start_response)
        try:
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.last = RequestTiming(self._cpu() - cpu, self._wall() - wall)
        return body
