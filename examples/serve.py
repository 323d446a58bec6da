"""Serve the demo shop on http://127.0.0.1:$PORT (default 5000).

Where the sessions go:

* ``DYNAMODB_ENDPOINT_URL=http://...``: that endpoint (DynamoDB Local, a moto server, ...),
  with credentials and region taken from the environment as usual;
* ``DEMO_REAL_DYNAMODB=1``: Amazon DynamoDB itself, through boto3's default endpoint,
  credentials and region;
* otherwise: a moto server started inside this process, gone when the demo stops.

``DEMO_TABLE_NAME`` names the table (created if missing, default
``dynamodb_session_flask_demo``). Stop with Ctrl-C or SIGTERM. For several processes, see
``examples/wsgi.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Callable

from flask import Flask

# Run as a script, only this file's folder is importable; the demo is the ``examples``
# package of the repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynamodb_session_flask import create_table  # noqa: E402
from examples.app import DEFAULT_TABLE_NAME, create_app  # noqa: E402

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

DEFAULT_PORT = 5000
HOST = "127.0.0.1"


def _start_embedded_moto() -> tuple[ThreadedMotoServer, str]:
    """Start moto in a thread of this process on a free port; return it and its URL."""
    from moto.server import ThreadedMotoServer

    # moto accepts any credentials, but botocore refuses to sign a request without some;
    # overriding real ones also keeps them from being sent anywhere by the demo.
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    # moto runs on werkzeug's server, which logs every DynamoDB call at INFO and would
    # drown the demo's own output. (With Flask's dev server as the fallback below, this
    # also hides its access log.)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


class PortTaken(Exception):
    """The port is in use: said in one line, with what to do."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"Port {port} on {HOST} is already in use (another demo still running?): "
            f"stop it, or choose another port, e.g. PORT={port + 1} make demo"
        )


def _check_port(port: int) -> None:
    """Fail before starting anything when another server listens on the port. (The
    server binds it again later; ``_bind`` reports the rare port taken in between.)"""
    with socket.socket() as probe:
        # As the server binds: a port whose last connections are closing is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortTaken(port) from exc
            raise


def _bind(app: Flask, port: int) -> Callable[[], object]:
    """Take the port now, so that a taken one is reported before the demo's address is
    printed; returns what serves until Ctrl-C or SIGTERM (by returning or by raising)."""
    try:
        from waitress import create_server  # type: ignore[import-untyped]
    except ImportError:
        return lambda: app.run(host=HOST, port=port)
    try:
        server = create_server(app, host=HOST, port=port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port) from exc
        raise
    # Its run() returns on KeyboardInterrupt and SystemExit, after stopping its threads.
    return server.run  # type: ignore[no-any-return]


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception in the main thread, so the finally clause in main()
    # runs just as it does for Ctrl-C.
    raise SystemExit(0)


def main() -> int:
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    table_name = os.environ.get("DEMO_TABLE_NAME", DEFAULT_TABLE_NAME)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    moto: ThreadedMotoServer | None = None
    cost_dir = tempfile.TemporaryDirectory(prefix="dynamodb-session-flask-demo-")
    try:
        _check_port(port)
        endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL") or None
        if endpoint_url is not None:
            where = f"the DynamoDB endpoint at {endpoint_url}"
        elif os.environ.get("DEMO_REAL_DYNAMODB") == "1":
            where = "Amazon DynamoDB (boto3's default credentials and region)"
        else:
            moto, endpoint_url = _start_embedded_moto()
            where = f"an embedded moto server at {endpoint_url}, gone when the demo stops"

        create_table(table_name, endpoint_url=endpoint_url, exist_ok=True)
        capacity_note = (
            "The embedded moto server reports a fixed 0.5 or 1 unit per call; DynamoDB "
            "(and dynalite) bill by item size and read consistency."
            if moto is not None
            else None
        )
        app = create_app(
            {
                "SESSION_DYNAMODB_ENDPOINT_URL": endpoint_url,
                "SESSION_DYNAMODB_TABLE_NAME": table_name,
                "DEMO_COST_LOG": os.path.join(cost_dir.name, "costs.sqlite3"),
                "DEMO_BACKEND": where,
                "DEMO_CAPACITY_NOTE": capacity_note,
            }
        )
        serve = _bind(app, port)
        print(f"Sessions: table {table_name!r} in {where}", flush=True)
        print(f"Demo shop: http://{HOST}:{port}/  (Ctrl-C to stop)", flush=True)
        serve()
    except KeyboardInterrupt:
        pass
    except PortTaken as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    finally:
        # A second SIGTERM while cleaning up kills the process outright.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if moto is not None:
            moto.stop()
        cost_dir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
