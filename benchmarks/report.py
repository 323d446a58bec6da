"""Turning round results into the figures and plain-text tables the benchmark prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

from .apps import LABELS
from .load import LoadResult
from .metering import Usage
from .mix import KINDS, RoundResult, median

#: Operations in the order the tables show them; others follow alphabetically.
OPERATION_ORDER = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")
SHORT_OPERATION = {
    "GetItem": "Get",
    "PutItem": "Put",
    "UpdateItem": "Update",
    "DeleteItem": "Delete",
}


@dataclass
class Figures:
    """One implementation's medians over the rounds (capacity and calls are exact, so
    their median is also every round's value)."""

    name: str
    rounds: int
    requests: int
    calls: float
    operations: dict[str, float]
    read_units: float
    write_units: float
    cpu_ms: float
    p50_ms: float
    p99_ms: float
    #: Medians of the per-round ratios against the floor's round run just before or after.
    cpu_ratio: float | None = None
    p50_ratio: float | None = None
    by_kind: dict[str, Usage] = field(default_factory=dict)
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    cpu_ms_by_kind: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def writes_on_reads(self) -> int:
        usage = self.by_kind.get("read")
        return usage.writes if usage is not None else 0


def figures(rounds: Sequence[RoundResult], floor: Sequence[RoundResult] | None) -> Figures:
    def per_request(pick: Callable[[RoundResult], float]) -> float:
        return median([r.per_request(pick(r)) for r in rounds])

    operations = sorted({op for r in rounds for op in r.usage.calls}, key=_operation_rank)
    total = Usage()
    requests_by_kind: dict[str, int] = {}
    by_kind: dict[str, Usage] = {}
    cpu_by_kind: dict[str, float] = {}
    for result in rounds:
        total = total + result.usage
        for kind, usage in result.by_kind.items():
            by_kind[kind] = by_kind.get(kind, Usage()) + usage
            requests_by_kind[kind] = requests_by_kind.get(kind, 0) + result.requests_by_kind[kind]
            cpu_by_kind[kind] = cpu_by_kind.get(kind, 0.0) + result.cpu_by_kind.get(kind, 0.0)
    found = Figures(
        name=rounds[0].name,
        rounds=len(rounds),
        requests=sum(r.requests for r in rounds),
        calls=per_request(lambda r: r.usage.total_calls),
        operations={op: per_request(_calls_of(op)) for op in operations},
        read_units=per_request(lambda r: r.usage.read_units),
        write_units=per_request(lambda r: r.usage.write_units),
        cpu_ms=median([r.cpu_ms for r in rounds]),
        p50_ms=median([r.wall_ms(0.50) for r in rounds]),
        p99_ms=median([r.wall_ms(0.99) for r in rounds]),
        by_kind=by_kind,
        requests_by_kind=requests_by_kind,
        cpu_ms_by_kind={k: v * 1000 / requests_by_kind[k] for k, v in cpu_by_kind.items()},
        failures=[f for r in rounds for f in r.failures],
    )
    if floor is not None:
        pairs = list(zip(rounds, floor))
        found.cpu_ratio = median([r.cpu_ms / f.cpu_ms for r, f in pairs if f.cpu_ms])
        found.p50_ratio = median(
            [r.wall_ms(0.5) / f.wall_ms(0.5) for r, f in pairs if f.wall_ms(0.5)]
        )
    return found


def _calls_of(operation: str) -> Callable[[RoundResult], float]:
    return lambda result: result.usage.calls[operation]


def _operation_rank(operation: str) -> tuple[int, str]:
    if operation in OPERATION_ORDER:
        return OPERATION_ORDER.index(operation), operation
    return len(OPERATION_ORDER), operation


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def cost_table(found: Sequence[Figures]) -> str:
    operations = sorted({op for f in found for op in f.operations}, key=_operation_rank)
    headers = [
        "implementation",
        "calls/req",
        *(SHORT_OPERATION.get(op, op) for op in operations),
        "RCU/req",
        "WCU/req",
        "CPU ms/req",
        "CPU vs floor",
        "p50 ms",
        "p99 ms",
        "p50 vs floor",
    ]
    rows = [
        [
            LABELS.get(f.name, f.name),
            f"{f.calls:.3f}",
            *(f"{f.operations.get(op, 0.0):.3f}" for op in operations),
            f"{f.read_units:.3f}",
            f"{f.write_units:.3f}",
            f"{f.cpu_ms:.3f}",
            _ratio(f.cpu_ratio if f.name != "floor" else 1.0),
            f"{f.p50_ms:.2f}",
            f"{f.p99_ms:.2f}",
            _ratio(f.p50_ratio if f.name != "floor" else 1.0),
        ]
        for f in found
    ]
    return render(headers, rows)


def _kind_cell(usage: Usage, requests: int, cpu_ms: float) -> str:
    if not requests:
        return "-"
    calls = " + ".join(
        f"{usage.calls[op] / requests:g} {SHORT_OPERATION.get(op, op)}"
        for op in sorted(usage.calls, key=_operation_rank)
    )
    return (
        f"{calls or 'no call'}; R {usage.read_units / requests:g} "
        f"W {usage.write_units / requests:g}; {cpu_ms:.2f} ms"
    )


def kind_table(found: Sequence[Figures]) -> str:
    """Calls, capacity units and app CPU per request of each kind: where each
    implementation spends."""
    headers = ["implementation", *KINDS]
    rows = [
        [
            LABELS.get(f.name, f.name),
            *(
                _kind_cell(
                    f.by_kind.get(kind, Usage()),
                    f.requests_by_kind.get(kind, 0),
                    f.cpu_ms_by_kind.get(kind, 0.0),
                )
                for kind in KINDS
            ),
        ]
        for f in found
    ]
    return render(headers, rows)


def scale_table(before: Figures, after: Figures, sessions: int, baseline: int) -> str:
    headers = [
        "sessions in table",
        "calls/req",
        "RCU/req",
        "WCU/req",
        "CPU ms/req",
        "CPU vs floor",
        "p50 ms",
        "p99 ms",
        "p50 vs floor",
    ]
    rows = [
        [
            f"{count:,}",
            f"{f.calls:.3f}",
            f"{f.read_units:.3f}",
            f"{f.write_units:.3f}",
            f"{f.cpu_ms:.3f}",
            _ratio(f.cpu_ratio),
            f"{f.p50_ms:.2f}",
            f"{f.p99_ms:.2f}",
            _ratio(f.p50_ratio),
        ]
        for count, f in ((baseline, before), (sessions, after))
    ]
    return render(headers, rows)


def load_table(results: Sequence[LoadResult]) -> str:
    floor = next((r for r in results if r.name.startswith("floor")), None)
    headers = [
        "app (waitress, 8 threads)",
        "requests",
        "req/s",
        "vs floor",
        "errors",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "RSS start MiB",
        "RSS end MiB",
        "RSS growth MiB",
    ]
    rows = [
        [
            r.name,
            f"{r.requests}",
            f"{r.rate:.0f}",
            _ratio(r.rate / floor.rate if floor is not None and floor.rate else None),
            f"{r.errors}",
            f"{r.latency_ms(0.5):.1f}",
            f"{r.latency_ms(0.99):.1f}",
            f"{r.cpu_ms_per_request:.2f}",
            f"{r.rss_start_mib:.1f}",
            f"{r.rss_end_mib:.1f}",
            f"{r.rss_growth_mib:+.1f}",
        ]
        for r in results
    ]
    return render(headers, rows)


@dataclass
class Target:
    """One goal of the issue, as measured in this run."""

    name: str
    measured: str
    limit: str
    met: bool | None  # None: could not be measured in this run


def targets_table(targets: Sequence[Target]) -> str:
    verdict = {True: "yes", False: "NO", None: "n/a"}
    rows = [[t.name, t.measured, t.limit, verdict[t.met]] for t in targets]
    return render(["target", "measured", "limit", "met"], rows)
