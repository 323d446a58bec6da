"""Serve one benchmark app with waitress (a real multi-threaded WSGI server) on 127.0.0.1.

Run by the load benchmark as a child process: ``python -m benchmarks.serve IMPL ENDPOINT
PAYLOAD``. It binds a free port, prints ``listening PORT`` once ready and serves until it is
terminated. ``IMPL`` is one of the benchmark apps, or ``example`` for ``examples/app.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from flask import Flask
from waitress.server import create_server  # type: ignore[import-untyped]

from .apps import IMPLEMENTATIONS, TABLES, build_app
from .payloads import PAYLOADS

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "app.py"
THREADS = 8


def example_available() -> bool:
    return EXAMPLE_APP.is_file()


def load_example_app(endpoint_url: str, cost_log: str) -> Flask:
    """The example shop, pointed at the benchmark's engine and table."""
    from examples.app import create_app

    # The shop builds its own shared client from boto3's defaults: credentials and region
    # come from the environment the benchmark gives this process.
    return create_app(
        {
            "SESSION_DYNAMODB_TABLE_NAME": TABLES["ours"],
            "SESSION_DYNAMODB_ENDPOINT_URL": endpoint_url,
            "DEMO_COST_LOG": cost_log,
        }
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("implementation", choices=[*IMPLEMENTATIONS, "example"])
    parser.add_argument("endpoint_url")
    parser.add_argument("payload", choices=list(PAYLOADS))
    args = parser.parse_args(argv)
    if args.implementation == "example":
        cost_dir = tempfile.TemporaryDirectory(prefix="bench-example-")
        app = load_example_app(args.endpoint_url, os.path.join(cost_dir.name, "costs.sqlite3"))
    else:
        app, _ = build_app(args.implementation, args.endpoint_url, args.payload)
    # Waitress warns on stderr when its queue backs up; under a saturating load that is
    # expected and would only bury real errors.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host="127.0.0.1", port=0, threads=THREADS)
    print(f"listening {server.effective_port}", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
