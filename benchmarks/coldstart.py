"""Cold start: what the first request of a fresh process costs next to later ones.

On AWS Lambda, or any server that starts processes on demand, the first request of a new
process lands on a user. Each sample here is a new Python process that imports and builds
a small app as a deployment would (module level: Lambda's init phase), then times the WSGI
call of its first request and of the requests after it. Every request reads an existing
session: one GetItem.

Three apps are compared: the floor, a plain boto3 client built at module level making one
GetItem per request (what any app reading DynamoDB pays, library or not: botocore's and
Flask's first-use work, and the first connection); this package installed with
``init_app(app)``, which builds the DynamoDB client at start-up; and this package installed
with ``app.session_interface = DynamoDbSession()``, which builds it inside the first
request that uses the session; and ``init_app`` given a client that made one GetItem at
start-up, what the docs' AWS Lambda recipe (docs/lambda.md) does with ``warm_up=True``,
which also pre-pays the connection and botocore's first-call work.

Run alone: ``python -m benchmarks.coldstart [--processes N]`` (starts its own dynalite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import Target

MODES = ("floor", "init_app", "warmed", "lazy")
FLOOR_KEY = "floor-profile"
TABLE = "bench_coldstart"
WARM_REQUESTS = 30
REFRESH_INTERVAL = 3600
DEFAULT_PROCESSES = 7
#: The goal: the first request of a fresh process within this factor of a warm one.
MAX_COLD_RATIO = 2.0
#: With the client built by init_app, the first request may cost at most this much more
#: than the floor's: the library adds nothing of its own to a cold start.
MAX_FIRST_VS_FLOOR = 1.5
ROOT = Path(__file__).resolve().parent.parent
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class ColdStart:
    """Medians over fresh processes, in milliseconds."""

    mode: str
    processes: int
    first_ms: float
    warm_ms: float

    @property
    def ratio(self) -> float:
        return self.first_ms / self.warm_ms


def child(mode: str, endpoint_url: str, cookie: str) -> None:
    """One fresh process: build the app, then time its first and later requests."""
    import boto3
    from flask import Flask, session
    from werkzeug.test import EnvironBuilder

    from dynamodb_session_flask import DynamoDbSession

    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=endpoint_url,
        SESSION_DYNAMODB_TABLE_NAME=TABLE,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
        # Every process reads the same stored session; with the default interval, whichever
        # request comes a minute after the last refresh would also write, and a first
        # request would be timed doing more than the later ones.
        SESSION_DYNAMODB_REFRESH_INTERVAL=REFRESH_INTERVAL,
    )
    if mode == "floor":
        client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url)

        @app.get("/")
        def floor() -> str:
            item = client.get_item(
                TableName=TABLE, Key={"id": {"S": FLOOR_KEY}}, ConsistentRead=True
            )["Item"]
            return item["user"]["S"]

    else:
        if mode == "init_app":
            DynamoDbSession().init_app(app)
        elif mode == "warmed":
            # The Lambda recipe: the library's own client, one warm-up read at start-up.
            DynamoDbSession().init_app(app, warm_up=True)
        else:
            app.session_interface = DynamoDbSession()

        @app.get("/")
        def index() -> str:
            return str(session.get("user", "anonymous"))

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def request_ms() -> float:
        environ = EnvironBuilder(path="/", headers=[("Cookie", f"id={cookie}")]).get_environ()
        started = time.perf_counter()
        body = b"".join(app(environ, start_response))
        elapsed = (time.perf_counter() - started) * 1000
        if body != b"bench-user":
            raise RuntimeError(f"the session did not load: {body!r}")
        return elapsed

    first = request_ms()
    warm = [request_ms() for _ in range(WARM_REQUESTS)]
    print(json.dumps({"first_ms": first, "warm_ms": statistics.median(warm)}))


def _store_session(endpoint_url: str) -> str:
    """Create the table and one stored session; return its id."""
    from flask import Flask, session

    from dynamodb_session_flask import DynamoDbSession, create_table

    from .apps import dynamodb_client

    client = dynamodb_client(endpoint_url)
    create_table(TABLE, client=client)
    client.put_item(TableName=TABLE, Item={"id": {"S": FLOOR_KEY}, "user": {"S": "bench-user"}})
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_TABLE_NAME=TABLE, SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False
    )
    DynamoDbSession(client=client).init_app(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "bench-user"
        return "ok"

    test_client = app.test_client()
    test_client.post("/login")
    cookie = test_client.get_cookie("id")
    if cookie is None:
        raise RuntimeError("no session cookie after login")
    return cookie.value


def measure(endpoint_url: str, processes: int = DEFAULT_PROCESSES) -> list[ColdStart]:
    """Fresh processes per mode, alternating modes so machine drift favours neither."""
    cookie = _store_session(endpoint_url)
    env = {**os.environ, **DUMMY_AWS, "PYTHONPATH": str(ROOT)}
    env.pop("AWS_SESSION_TOKEN", None)
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(processes):
        for mode in MODES:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.coldstart",
                    "--child",
                    mode,
                    endpoint_url,
                    cookie,
                ],
                env=env,
                cwd=str(ROOT),
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            samples[mode].append(json.loads(out.strip().splitlines()[-1]))
    return [
        ColdStart(
            mode,
            processes,
            statistics.median(s["first_ms"] for s in samples[mode]),
            statistics.median(s["warm_ms"] for s in samples[mode]),
        )
        for mode in MODES
    ]


def targets(results: list[ColdStart]) -> list[Target]:
    from .report import Target

    by_mode = {r.mode: r for r in results}
    floor, built, warmed = by_mode["floor"], by_mode["init_app"], by_mode["warmed"]
    first_vs_floor = built.first_ms / floor.first_ms
    return [
        Target(
            "cold start: first request vs warm, init_app + 1 GetItem at start-up",
            f"{warmed.ratio:.2f}x",
            f"<= {MAX_COLD_RATIO:.1f}x",
            warmed.ratio <= MAX_COLD_RATIO,
        ),
        Target(
            "cold start: first request with init_app vs the floor's first request",
            f"{first_vs_floor:.2f}x",
            f"<= {MAX_FIRST_VS_FLOOR:.1f}x",
            first_vs_floor <= MAX_FIRST_VS_FLOOR,
        ),
    ]


def table(results: list[ColdStart]) -> str:
    from .report import render

    labels = {
        "floor": "floor: boto3 client built at import, 1 GetItem",
        "init_app": "DynamoDbSession().init_app(app): client built at start-up",
        "warmed": "init_app(app, warm_up=True): 1 GetItem at start-up",
        "lazy": "app.session_interface = DynamoDbSession(): built in a request",
    }
    rows = [
        [labels[r.mode], f"{r.first_ms:.1f}", f"{r.warm_ms:.1f}", f"{r.ratio:.2f}x"]
        for r in results
    ]
    return render(["installed with", "first request ms", "warm request ms", "ratio"], rows)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart", description=__doc__)
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES)
    args = parser.parse_args(argv)
    from tests.engines import start_engine

    from .report import targets_table

    engine = start_engine("dynalite")
    try:
        results = measure(engine.endpoint_url, args.processes)
    finally:
        engine.stop()
        engine.remove_log()
    print(table(results))
    print()
    print(targets_table(targets(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
