"""The whole benchmark: cost and CPU of the request mix for each implementation and each
kind of session, the same with 100,000 sessions in the table, and a load run under real
concurrency; then the targets, met or not, and the Performance page's figures and chart
rewritten."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from tests.engines import LocalEngine, engine_client, start_engine

from . import apps, coldstart, load
from .bulk import load_sessions
from .metering import Meter
from .mix import REQUESTS_PER_USER, RoundResult, Subject, run_interleaved, run_round
from .payloads import PAYLOADS
from .readme import Run, publish
from .report import (
    Figures,
    Target,
    cost_table,
    figures,
    kind_table,
    load_table,
    scale_table,
    targets_table,
)
from .serve import THREADS, example_available

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: The sessions measured (see payloads.py); the first is the one of the scale and load runs.
PAYLOAD_NAMES = ("1k", "8k", "8k-shop", "8k-random")
SMALL = PAYLOAD_NAMES[0]
#: Bytes of the sessions loaded in bulk for the scale run: the size of the small session.
BULK_SESSION_SIZE = 1000
WARMUP_USERS = 2
MAX_FAILURES_SHOWN = 3

# The targets.
MAX_CALLS_PER_REQUEST = 1.10
MAX_WRITE_UNITS_1KB = 0.30
#: "Far below the peers" at 8 KB: at most this fraction of the cheapest peer's write units.
MAX_WRITE_UNITS_VS_PEER = 0.25
MAX_CPU_VS_FLOOR = 1.15
#: A shop's ~8 KB session should bill about like a ~1 KB one (uncompressed: 1.81 and 1.14).
MAX_READ_UNITS_SHOP = 0.95
MAX_WRITE_UNITS_SHOP = 0.45
#: Sessions compression cannot help must cost at most this much more than with it off.
MAX_COST_VS_UNCOMPRESSED = 1.02
#: With a large table the per-request CPU and p50 latency, relative to the floor, may move
#: by this much before they count as changed: the run-to-run noise seen on a 2-core machine.
SCALE_TOLERANCE = 0.10
#: A server that keeps nothing per request stays within this RSS growth over a load run.
MAX_RSS_GROWTH_MIB = 5.0


@dataclass(frozen=True)
class Options:
    rounds: int
    users: int
    sessions: int
    load_seconds: float
    warmup_seconds: float
    concurrency: int
    cold_processes: int
    check: bool
    write: bool


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="DynamoDB cost, CPU and latency of Flask session implementations, "
        "side by side with a floor, on a local dynalite engine.",
    )
    parser.add_argument("--rounds", type=int, help="rounds per implementation (default 7)")
    parser.add_argument("--users", type=int, help="simulated users per round (default 20)")
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions in the large table")
    parser.add_argument("--load-seconds", type=float, help="seconds of load per app")
    parser.add_argument("--concurrency", type=int, default=8, help="load driver threads")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter load")
    parser.add_argument("--check", action="store_true", help="exit with 1 when a target is missed")
    parser.add_argument(
        "--no-write",
        dest="write",
        action="store_false",
        help="leave docs/performance.md and benchmarks/cost.svg as they are (implied by --quick)",
    )
    args = parser.parse_args(argv)
    return Options(
        rounds=args.rounds or (3 if args.quick else 7),
        users=args.users or (8 if args.quick else 20),
        sessions=args.sessions,
        load_seconds=args.load_seconds or (3.0 if args.quick else 10.0),
        warmup_seconds=1.0 if args.quick else 2.0,
        concurrency=args.concurrency,
        cold_processes=3 if args.quick else coldstart.DEFAULT_PROCESSES,
        check=args.check,
        # A quick run's figures are too rough for the Performance page.
        write=args.write and not args.quick,
    )


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def make_subject(name: str, endpoint_url: str, payload: str) -> Subject:
    app, client = apps.build_app(name, endpoint_url, payload)
    meter = Meter()
    meter.attach(client)
    return Subject.wrap(name, app, meter, PAYLOADS[payload].cart_size())


def measure_mix(
    subjects: list[Subject], options: Options, tag: str
) -> dict[str, list[RoundResult]]:
    """Rounds of the mix; within a round the implementations take turns user by user, so
    that drift in the machine's speed, or other work on it, does not favour one of them."""
    for subject in subjects:
        run_round(subject, WARMUP_USERS, f"{tag}-warmup")
    results: dict[str, list[RoundResult]] = {s.name: [] for s in subjects}
    for number in range(options.rounds):
        gc.collect()
        found = run_interleaved(subjects, options.users, f"{tag}-r{number}")
        for name, result in found.items():
            results[name].append(result)
    return results


def summarise(results: dict[str, list[RoundResult]]) -> dict[str, Figures]:
    floor = results["floor"]
    return {
        name: figures(rounds, None if name == "floor" else floor)
        for name, rounds in results.items()
    }


def print_section(title: str, body: str) -> None:
    print(f"\n{title}\n{body}", flush=True)


def print_failures(found: dict[str, Figures]) -> None:
    for figures_of in found.values():
        for failure in figures_of.failures[:MAX_FAILURES_SHOWN]:
            print(f"  unexpected response, {apps.LABELS[figures_of.name]}: {failure}")


def item_count(client: DynamoDBClient, table_name: str) -> int:
    count = 0
    for page in client.get_paginator("scan").paginate(TableName=table_name, Select="COUNT"):
        count += page["Count"]
    return count


def run(engine: LocalEngine, options: Options) -> tuple[list[Target], Run]:
    endpoint = engine.endpoint_url
    setup = engine_client(endpoint, max_pool_connections=16)
    peer_problem = apps.flask_session_problem()
    with_peer = peer_problem is None
    apps.prepare_tables(setup, PAYLOAD_NAMES, with_peer)
    names = ["floor", "ours", "ours_uncompressed", *(["flask_session"] if with_peer else [])]
    print(
        f"Mix per user: login, 18 reads, 1 change, logout ({REQUESTS_PER_USER} requests); "
        f"{options.rounds} rounds x {options.users} users per implementation; medians of "
        f"rounds.\nEngine: dynalite at {endpoint} (capacity units as DynamoDB bills them). "
        f"CPU: the app thread's own time per request."
    )
    if not with_peer:
        print(f"Flask-Session's DynamoDB backend is not usable ({peer_problem}): left out.")

    by_payload: dict[str, dict[str, Figures]] = {}
    small_subjects: list[Subject] = []
    for payload in PAYLOAD_NAMES:
        label = PAYLOADS[payload].label
        progress(f"measuring the mix with a {label} session")
        subjects = [make_subject(name, endpoint, payload) for name in names]
        found = summarise(measure_mix(subjects, options, f"p{payload}"))
        by_payload[payload] = found
        if payload == SMALL:
            small_subjects = subjects[:2]
        print_section(
            f"Session {label} ({PAYLOADS[payload].serialized_size()} bytes of JSON): per request",
            cost_table(list(found.values())),
        )
        print_failures(found)
        print_section(
            "Where it goes, per request of each kind (R/W: capacity units; app CPU ms)",
            kind_table(list(found.values())),
        )

    progress(f"loading {options.sessions:,} sessions into {apps.TABLES['ours']}")
    baseline = item_count(setup, apps.TABLES["ours"])
    started = time.monotonic()
    load_sessions(setup, apps.TABLES["ours"], options.sessions, BULK_SESSION_SIZE)
    loaded_seconds = time.monotonic() - started
    in_table = item_count(setup, apps.TABLES["ours"])
    progress(f"measuring the mix with {in_table:,} sessions in the table")
    large = summarise(measure_mix(small_subjects, options, "large"))["ours"]
    small = by_payload[SMALL]["ours"]
    print_section(
        f"This package, {PAYLOADS[SMALL].label} session, with {in_table:,} sessions in the table "
        f"(loaded in {loaded_seconds:.0f} s): per request",
        scale_table(small, large, in_table, baseline),
    )
    print_failures({"ours": large})

    progress("load runs")
    load_results = run_load(endpoint, options)
    print_section(
        f"Load: waitress with {THREADS} threads in its own process, "
        f"{options.concurrency} keep-alive clients in this one, {options.load_seconds:g} s "
        f"per app after {options.warmup_seconds:g} s of warm-up; same mix",
        load_table(load_results),
    )
    for result in load_results:
        for sample in result.error_samples:
            print(f"  error, {result.name}: {sample}")
    progress("cold starts: fresh processes")
    cold = coldstart.measure(endpoint, options.cold_processes)
    print_section(
        f"Cold start: the first request of a fresh process next to its later ones, "
        f"medians of {options.cold_processes} processes per app (each request reads a stored "
        f"session)",
        coldstart.table(cold),
    )
    found_targets = targets(by_payload, small, large, load_results, with_peer)
    found_targets += coldstart.targets(cold)
    date = datetime.now(timezone.utc).strftime("%d %B %Y").lstrip("0")
    report = Run(
        options.rounds, options.users, date, by_payload, small, large, in_table, load_results
    )
    return found_targets, report


def run_load(endpoint_url: str, options: Options) -> list[load.LoadResult]:
    plan = [
        ("floor: cookie session + 1 GetItem", "floor"),
        ("this package, bench app", "ours"),
    ]
    if example_available():
        plan.append(("this package, examples/app.py shop", "example"))
    results = []
    for name, implementation in plan:
        progress(f"load: {name}")
        results.append(
            load.measure(
                name,
                implementation,
                endpoint_url,
                SMALL,
                options.load_seconds,
                options.concurrency,
                options.warmup_seconds,
            )
        )
    return results


def compression_targets(by_payload: dict[str, dict[str, Figures]]) -> list[Target]:
    """A shop's session billed like a small one; sessions compression cannot shrink no
    dearer than with compression off; the same calls either way."""
    shop = by_payload["8k-shop"]["ours"]
    label = PAYLOADS["8k-shop"].label
    found = [
        Target(
            f"read units/request, {label}",
            f"{shop.read_units:.3f}",
            f"<= {MAX_READ_UNITS_SHOP:.2f}",
            shop.read_units <= MAX_READ_UNITS_SHOP,
        ),
        Target(
            f"write units/request, {label}",
            f"{shop.write_units:.3f}",
            f"<= {MAX_WRITE_UNITS_SHOP:.2f}",
            shop.write_units <= MAX_WRITE_UNITS_SHOP,
        ),
    ]
    for payload in PAYLOAD_NAMES:
        ours = by_payload[payload]["ours"]
        before = by_payload[payload]["ours_uncompressed"]
        found.append(
            Target(
                f"calls/request vs compression off, {PAYLOADS[payload].label}",
                f"{ours.calls:.3f} vs {before.calls:.3f}",
                "unchanged",
                abs(ours.calls - before.calls) < 1e-9,
            )
        )
    for payload in (SMALL, "8k-random"):
        ours = by_payload[payload]["ours"]
        before = by_payload[payload]["ours_uncompressed"]
        for unit, now, then in (
            ("read", ours.read_units, before.read_units),
            ("write", ours.write_units, before.write_units),
        ):
            found.append(
                Target(
                    f"{unit} units/request vs compression off, {PAYLOADS[payload].label}",
                    f"{now:.3f} vs {then:.3f}",
                    f"<= {MAX_COST_VS_UNCOMPRESSED:.2f}x",
                    now <= MAX_COST_VS_UNCOMPRESSED * then + 1e-9,
                )
            )
    return found


def targets(
    by_payload: dict[str, dict[str, Figures]],
    small: Figures,
    large: Figures,
    load_results: list[load.LoadResult],
    with_peer: bool,
) -> list[Target]:
    found: list[Target] = []
    for payload in PAYLOAD_NAMES:
        ours = by_payload[payload]["ours"]
        found.append(
            Target(
                f"calls/request on the mix, {PAYLOADS[payload].label}",
                f"{ours.calls:.3f}",
                f"<= {MAX_CALLS_PER_REQUEST:.2f}",
                ours.calls <= MAX_CALLS_PER_REQUEST,
            )
        )
    ours_small = by_payload[SMALL]["ours"]
    found.append(
        Target(
            f"write units/request, {PAYLOADS[SMALL].label}",
            f"{ours_small.write_units:.3f}",
            f"<= {MAX_WRITE_UNITS_1KB:.2f}",
            ours_small.write_units <= MAX_WRITE_UNITS_1KB,
        )
    )
    ours_large = by_payload["8k"]["ours"]
    peer: Figures | None = by_payload["8k"].get("flask_session") if with_peer else None
    found.append(
        Target(
            f"write units/request, {PAYLOADS['8k'].label}, vs Flask-Session",
            f"{ours_large.write_units:.3f}"
            + (f" vs {peer.write_units:.3f}" if peer is not None else ""),
            f"<= {MAX_WRITE_UNITS_VS_PEER:.2f}x peer",
            None
            if peer is None
            else ours_large.write_units <= MAX_WRITE_UNITS_VS_PEER * peer.write_units,
        )
    )
    found += compression_targets(by_payload)
    writes_on_reads = sum(by_payload[p]["ours"].writes_on_reads for p in PAYLOAD_NAMES)
    writes_on_reads += large.writes_on_reads
    found.append(
        Target(
            "writes on reading requests (refresh interval not reached)",
            f"{writes_on_reads}",
            "0",
            writes_on_reads == 0,
        )
    )
    for payload in PAYLOAD_NAMES:
        ratio = by_payload[payload]["ours"].cpu_ratio or 0.0
        found.append(
            Target(
                f"app CPU vs floor, {PAYLOADS[payload].label}",
                f"{ratio:.2f}x",
                f"<= {MAX_CPU_VS_FLOOR:.2f}x",
                ratio <= MAX_CPU_VS_FLOOR,
            )
        )
    same_cost = (
        abs(large.calls - small.calls) < 1e-9
        and abs(large.read_units - small.read_units) < 1e-9
        and abs(large.write_units - small.write_units) < 1e-9
    )
    found.append(
        Target(
            "calls and units/request with the large table",
            f"{large.calls:.3f} calls, {large.read_units:.3f} R, {large.write_units:.3f} W",
            "unchanged",
            same_cost,
        )
    )
    cpu_drift = (large.cpu_ratio or 0.0) - (small.cpu_ratio or 0.0)
    found.append(
        Target(
            "CPU vs floor with the large table, change",
            f"{cpu_drift:+.2f}",
            f"<= +{SCALE_TOLERANCE:.2f}",
            cpu_drift <= SCALE_TOLERANCE,
        )
    )
    p50_drift = (large.p50_ratio or 0.0) - (small.p50_ratio or 0.0)
    found.append(
        Target(
            "p50 latency vs floor with the large table, change",
            f"{p50_drift:+.2f}",
            f"<= +{SCALE_TOLERANCE:.2f}",
            p50_drift <= SCALE_TOLERANCE,
        )
    )
    failures = [f for by_name in by_payload.values() for f in by_name["ours"].failures]
    failures += large.failures
    found.append(
        Target(
            "mix responses not as expected (this package)", f"{len(failures)}", "0", not failures
        )
    )
    for result in load_results:
        found.append(
            Target(f"load errors: {result.name}", f"{result.errors}", "0", result.errors == 0)
        )
        found.append(
            Target(
                f"RSS growth under load: {result.name}",
                f"{result.rss_growth_mib:+.1f} MiB",
                f"<= {MAX_RSS_GROWTH_MIB:.0f} MiB",
                result.rss_growth_mib <= MAX_RSS_GROWTH_MIB,
            )
        )
    return found


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    # The peers under comparison emit deprecation warnings on every request; they are not
    # what this run is about.
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    engine = start_engine("dynalite")
    try:
        found, report = run(engine, options)
    finally:
        engine.stop()
        engine.remove_log()
    print_section("Targets", targets_table(found))
    if options.write:
        written = publish(report)
        print("\nWrote " + ", ".join(str(path.name) for path in written) + ".")
    missed = [t.name for t in found if t.met is False]
    print(
        f"\n{len(found) - len(missed)} of {len(found)} targets met "
        f"in {time.monotonic() - started:.0f} s."
    )
    if missed:
        print("Missed: " + "; ".join(missed))
    return 1 if options.check and missed else 0
