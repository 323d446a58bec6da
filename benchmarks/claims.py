"""The Performance page's exact figures (docs/performance.md), measured again in seconds,
for CI.

``python -m benchmarks.claims`` runs the benchmark's request mix (login, 18 reads, 1
change, logout per user) on this package, with compression on and off, for each session
the Performance page's table lists, and compares the calls, read units and write units
per request with that table to the digit it prints. Those figures are exact on dynalite,
which meters capacity as DynamoDB bills it, so one short round gives the same numbers as
`make bench`'s many: any difference is a change in what the package does. CPU and latency
ratios move from run to run on a shared machine and are left to `make bench`.

Exits 1, naming each figure, when one differs. After a change that is meant to alter the
figures, `make bench` rewrites the page and this check follows it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings

from tests.engines import REPO_ROOT, engine_client, start_engine

from . import apps
from .metering import Meter
from .mix import Subject, run_interleaved, run_round
from .payloads import PAYLOADS
from .readme import END, README, START, TABLE_LABELS
from .report import figures

#: The implementations whose figures are this package's own.
CHECKED = ("ours", "ours_uncompressed")
#: Users per implementation and session: every user makes the same requests, so the
#: figures per request do not depend on how many there are.
USERS = 3
#: Figures per row, in the table's order after its two label columns.
COLUMNS = ("calls/request", "read units/request", "write units/request")


def published(readme: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """The Performance page table's figures, by (session label, implementation)."""
    section = readme.split(START, 1)[1].split(END, 1)[0]
    implementation_of = {label: name for name, label in TABLE_LABELS.items()}
    rows: dict[tuple[str, str], tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 + len(COLUMNS) or cells[1] not in implementation_of:
            continue
        values = tuple(re.sub(r"\*\*", "", cell) for cell in cells[2 : 2 + len(COLUMNS)])
        rows[(cells[0], implementation_of[cells[1]])] = values
    return rows


def measured(endpoint_url: str) -> dict[tuple[str, str], tuple[str, ...]]:
    setup = engine_client(endpoint_url)
    apps.prepare_tables(setup, list(PAYLOADS), False)
    rows: dict[tuple[str, str], tuple[str, ...]] = {}
    for payload in PAYLOADS.values():
        subjects = []
        for name in CHECKED:
            app, client = apps.build_app(name, endpoint_url, payload.name)
            meter = Meter()
            meter.attach(client)
            subjects.append(Subject.wrap(name, app, meter, payload.cart_size()))
        for subject in subjects:
            run_round(subject, 1, f"p{payload.name}-warmup")
        for name, result in run_interleaved(subjects, USERS, f"p{payload.name}-r0").items():
            if result.failures:
                raise RuntimeError(f"{name}, {payload.label}: {result.failures[0]}")
            found = figures([result], None)
            rows[(payload.label, name)] = (
                f"{found.calls:.2f}",
                f"{found.read_units:.2f}",
                f"{found.write_units:.2f}",
            )
    return rows


def compare(
    claimed: dict[tuple[str, str], tuple[str, ...]],
    found: dict[tuple[str, str], tuple[str, ...]],
) -> list[str]:
    """One line per figure that differs, or that the page no longer shows."""
    problems = []
    for (label, name), values in found.items():
        published_values = claimed.get((label, name))
        if published_values is None:
            problems.append(f"{label}, {TABLE_LABELS[name]}: not in the Performance page's table")
            continue
        for column, now, then in zip(COLUMNS, values, published_values):
            if now != then:
                problems.append(
                    f"{label}, {TABLE_LABELS[name]}, {column}: measured {now}, the page says {then}"
                )
    return problems


def main() -> int:
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    claimed = published(README.read_text(encoding="utf-8"))
    with start_engine("dynalite") as engine:
        found = measured(engine.endpoint_url)
    problems = compare(claimed, found)
    for (label, name), values in found.items():
        print(f"{label:<14} {TABLE_LABELS[name].strip('*')[:40]:<40} " + "  ".join(values))
    for problem in problems:
        print(f"MISMATCH {problem}")
    print(
        f"{len(found) * len(COLUMNS) - len(problems)} of {len(found) * len(COLUMNS)} "
        f"figures of {README.relative_to(REPO_ROOT)} measured exactly, "
        f"in {time.monotonic() - started:.0f} s."
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
