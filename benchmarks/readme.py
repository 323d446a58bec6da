"""The documentation's Performance page (docs/performance.md, between its markers) and the
cost chart, written from one benchmark run so the figures a reader sees are the ones last
measured."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from .chart import Bar, Group, cost_chart
from .load import LoadResult
from .payloads import PAYLOADS
from .pricing import per_million_requests, prices_sentence
from .report import Figures

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "docs" / "performance.md"
CHART = REPO_ROOT / "benchmarks" / "cost.svg"
START = "<!-- performance:start (written by `make bench`: edit benchmarks/readme.py) -->"
END = "<!-- performance:end -->"

SHORT_LABELS = {
    "floor": "floor",
    "ours": "this package",
    "ours_uncompressed": "this package, compression off",
    "flask_session": "Flask-Session 0.8",
}
TABLE_LABELS = {
    "floor": "floor: Flask's cookie session + one raw GetItem",
    "ours": "**this package**",
    "ours_uncompressed": "this package, compression off (every value text, as before)",
    "flask_session": "Flask-Session 0.8 DynamoDB backend (eventual reads)",
}
SESSIONS = {
    "1k": "a profile of about 1 KB of JSON",
    "8k": "a profile padded to about 8 KB with a list of product codes",
    "8k-shop": "what a shop keeps: a 40-line cart of product records, a profile with "
    "addresses and recent orders, a CSRF token and two flashed messages",
    "8k-random": "about 8 KB of random base64 text, which does not compress",
}
#: Not measured here: the package this one replaces, from its own measurement (~1 KB).
REPLACED_PACKAGE = (2.91, 0.95, 3.90, 8.0)


@dataclass(frozen=True)
class Run:
    """What the README reports from one benchmark run."""

    rounds: int
    users: int
    date: str
    by_payload: Mapping[str, Mapping[str, Figures]]
    small: Figures
    large: Figures
    sessions_in_table: int
    load_results: Sequence[LoadResult]


def _dollars(figures: Figures) -> float:
    return per_million_requests(figures.read_units, figures.write_units)


def money(dollars: float) -> str:
    """Dollars to the cent, halves rounded up as a price list would ($0.125 is $0.13)."""
    cents = Decimal(str(dollars)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${cents}"


def paragraph(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text, width=90, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    )


def chart(run: Run) -> str:
    groups = [
        Group(
            f"{PAYLOADS[name].label} session",
            [
                Bar(
                    implementation,
                    SHORT_LABELS[implementation],
                    _dollars(figures),
                    money(_dollars(figures)),
                )
                for implementation, figures in found.items()
            ],
        )
        for name, found in run.by_payload.items()
    ]
    return cost_chart(
        "DynamoDB cost per million requests, by session size",
        f"Login, 18 reads, 1 change, logout; on-demand prices, us-east-1; measured "
        f"{run.date} with make bench",
        groups,
    )


def _cpu(figures: Figures) -> str:
    ratio = 1.0 if figures.name == "floor" else figures.cpu_ratio
    return "-" if ratio is None else f"{ratio:.2f}×"


def section(run: Run) -> str:
    """The Performance section's body, between its markers."""
    lines = [
        paragraph(
            "DynamoDB bills each read per 4 KB and each write per 1 KB of the whole item, "
            "even a write that changes one key, and a session store runs on every request. "
            "Measured with `make bench` (`benchmarks/run.py`, see `benchmarks/README.md`) on "
            "dynalite, which reports consumed capacity by item size as DynamoDB does: per "
            "user, a login, 18 requests that read the session, 1 change and a logout; "
            f"{run.rounds} rounds of {run.users} users, medians; run on {run.date}. "
            '"App CPU" is the app thread\'s own time per request, relative to the floor. '
            "Sessions:"
        ),
        "",
    ]
    for name in run.by_payload:
        lines.append(paragraph(f"- {PAYLOADS[name].label}: {SESSIONS[name]}.", indent="  "))
    lines += [
        "",
        "![DynamoDB cost per million requests for each implementation and session size]"
        "(../benchmarks/cost.svg)",
        "",
        "| session | implementation | calls/request | read units/request "
        "| write units/request | app CPU vs floor | $ per million requests |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, found in run.by_payload.items():
        for implementation, figures in found.items():
            cells = [
                f"{figures.calls:.2f}",
                f"{figures.read_units:.2f}",
                f"{figures.write_units:.2f}",
                _cpu(figures),
                money(_dollars(figures)),
            ]
            if implementation == "ours":
                cells = [f"**{cell}**" for cell in cells]
            row = [PAYLOADS[name].label, TABLE_LABELS[implementation], *cells]
            lines.append("| " + " | ".join(row) + " |")
    calls, reads, writes, cpu = REPLACED_PACKAGE
    lines += [
        "",
        paragraph(
            f"The package this one replaces, by its own measurement with a ~1 KB session: "
            f"{calls:.2f} calls, {reads:.2f} read and {writes:.2f} write units per request, "
            f"{cpu:.1f}× the floor's CPU ({money(per_million_requests(reads, writes))} per "
            "million requests)."
        ),
        "",
        paragraph(
            f"Prices: {prices_sentence()}. Cost per million requests = read units × read "
            "price + write units × write price."
        ),
        "",
        paragraph(
            "Large values are stored compressed (see `SESSION_DYNAMODB_COMPRESS_THRESHOLD`), "
            "so the shop's ~8 KB session is billed like a small one; random text does not "
            "shrink and costs what it did. The floor stores its copy uncompressed: it is the "
            "least CPU a server-side session can spend, not the least it can be billed."
        ),
        "",
    ]
    small, large = run.small, run.large
    scale = [
        f"With {run.sessions_in_table:,} sessions in the table the per-request figures of "
        f"the ~1 KB session are {'unchanged' if _same_cost(small, large) else 'different'} "
        f"({large.calls:.2f} calls, {large.read_units:.2f} R, {large.write_units:.2f} W; "
        f"CPU {large.cpu_ratio or 0:.2f}× the floor's)."
    ]
    floor_load = next((r for r in run.load_results if r.name.startswith("floor")), None)
    ours_load = next((r for r in run.load_results if r.name == "this package, bench app"), None)
    if floor_load is not None and ours_load is not None:
        scale.append(
            f"Served by waitress (8 threads, one shared client) and driven by 8 keep-alive "
            f"clients, the bench app with a ~1 KB session served {ours_load.rate:.0f} "
            f"requests/s against the floor's {floor_load.rate:.0f}, with {ours_load.errors} "
            f"errors and {ours_load.rss_growth_mib:+.1f} MiB RSS over the run."
        )
    scale.append(
        "The machine was a shared 2-core VM: CPU ratios move by about ±0.05 between runs, "
        "more when other work runs beside; calls and capacity units are exact."
    )
    lines.append(paragraph(" ".join(scale)))
    return "\n".join(lines)


def _same_cost(small: Figures, large: Figures) -> bool:
    return (
        abs(large.calls - small.calls) < 1e-9
        and abs(large.read_units - small.read_units) < 1e-9
        and abs(large.write_units - small.write_units) < 1e-9
    )


def rewrite_readme(readme: str, body: str) -> str:
    """``readme`` with the text between the Performance markers replaced by ``body``.

    :raises ValueError: when the markers are missing.
    """
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {START!r} ... {END!r} markers")
    return pattern.sub(lambda _: f"{START}\n{body}\n{END}", readme, count=1)


def publish(run: Run) -> list[Path]:
    """Write the chart and the Performance page's figures; return what was written."""
    CHART.write_text(chart(run), encoding="utf-8")
    README.write_text(rewrite_readme(README.read_text("utf-8"), section(run)), "utf-8")
    return [CHART, README]
