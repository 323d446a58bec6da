"""What one request cost in DynamoDB, as DynamoDB itself reported it.

botocore's event hooks, registered on the boto3 session the session interface builds its
client from, ask every call for ``ReturnConsumedCapacity="TOTAL"`` and add the answer to
the current request's tally. The library is not changed or wrapped: this is how any
application can see what its sessions cost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import g, has_request_context

if TYPE_CHECKING:
    from botocore.hooks import BaseEventHooks
    from botocore.model import OperationModel

#: With ``TOTAL``, DynamoDB reports one ``CapacityUnits`` figure per call; whether it is
#: read or write capacity follows from the operation.
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_TALLY = "dynamodb_cost"


@dataclass
class RequestCost:
    """The DynamoDB calls of one HTTP request, by operation, and the capacity they used."""

    method: str = ""
    path: str = ""
    calls: Counter[str] = field(default_factory=Counter)
    #: Calls DynamoDB refused (a condition that did not hold): billed, but not applied.
    refused: Counter[str] = field(default_factory=Counter)
    #: Calls that failed with another error (a missing table, a missing permission, a
    #: throttle), by "Operation: ErrorCode": nothing was done.
    failed: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "calls": dict(self.calls),
            "refused": dict(self.refused),
            "failed": dict(self.failed),
            "read_units": self.read_units,
            "write_units": self.write_units,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestCost:
        return cls(
            method=str(data["method"]),
            path=str(data["path"]),
            calls=Counter({str(k): int(v) for k, v in data["calls"].items()}),
            refused=Counter({str(k): int(v) for k, v in data.get("refused", {}).items()}),
            failed=Counter({str(k): int(v) for k, v in data.get("failed", {}).items()}),
            read_units=float(data["read_units"]),
            write_units=float(data["write_units"]),
        )


def attach(events: BaseEventHooks) -> None:
    """Meter every DynamoDB client built from the session (or client) owning ``events``."""
    events.register("before-parameter-build.dynamodb", _ask_for_capacity)
    events.register("after-call.dynamodb", _record)


def current() -> RequestCost:
    """The tally of the request being served (created on first use)."""
    tally: RequestCost | None = g.get(_TALLY)
    if tally is None:
        tally = RequestCost()
        setattr(g, _TALLY, tally)
    return tally


def _ask_for_capacity(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
    shape = model.input_shape
    if shape is not None and "ReturnConsumedCapacity" in shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _record(http_response: Any, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
    # The client is shared by the whole process; calls made outside a request (none in
    # this app) belong to no visitor.
    if not has_request_context():
        return
    tally = current()
    operation = model.name
    tally.calls[operation] += 1
    if getattr(http_response, "status_code", 200) >= 300:
        code = str(parsed.get("Error", {}).get("Code", "") or "error")
        if code == "ConditionalCheckFailedException":
            tally.refused[operation] += 1
        else:
            tally.failed[f"{operation}: {code}"] += 1
    consumed = parsed.get("ConsumedCapacity") or {}
    units = float(consumed.get("CapacityUnits", 0.0)) if isinstance(consumed, dict) else 0.0
    if operation in READ_OPERATIONS:
        tally.read_units += units
    else:
        tally.write_units += units
