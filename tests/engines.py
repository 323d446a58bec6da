"""Local DynamoDB-compatible servers for the test suite, run as subprocesses.

Two engines are supported: moto's standalone server (PyPI) and dynalite (npm). Each runs
in its own process on 127.0.0.1 so that tests talk to it over real HTTP, exactly like the
library talks to DynamoDB, and so that a test can kill or restart the server under load.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = [
    "ENGINE_NAMES",
    "NPM_INSTALL_COMMAND",
    "REPO_ROOT",
    "LocalEngine",
    "dynalite_available",
    "engine_client",
    "free_port",
    "start_engine",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DYNALITE_CLI = REPO_ROOT / "node_modules" / "dynalite" / "cli.js"
NPM_INSTALL_COMMAND = "npm ci --no-audit --no-fund"
ENGINE_NAMES = ("moto", "dynalite")

# Neither engine checks signatures, but botocore refuses to sign without credentials.
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"
REGION = "us-east-1"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
LOG_TAIL_BYTES = 4000

_live: set[LocalEngine] = set()
_live_lock = threading.Lock()


def engine_client(endpoint_url: str, **config: Any) -> DynamoDBClient:
    """Low-level DynamoDB client for a local engine.

    Credentials and region are passed explicitly so the result does not depend on the
    caller's AWS_* environment variables or ~/.aws files; ``config`` goes to botocore's
    ``Config`` (e.g. ``retries={"mode": "standard", "max_attempts": 3}``, ``read_timeout=2``).
    """
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
        region_name=REGION,
    )
    return session.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
        config=Config(**config),
    )


def dynalite_available() -> bool:
    return DYNALITE_CLI.is_file() and shutil.which("node") is not None


def free_port() -> int:
    """A port nothing listens on now (another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(name: str, port: int, data_path: str | None) -> list[str]:
    if name == "moto":
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    if name == "dynalite":
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("dynalite needs Node.js, but `node` is not on PATH")
        if not DYNALITE_CLI.is_file():
            raise RuntimeError(
                f"dynalite is not installed ({DYNALITE_CLI} is missing); "
                f"run `{NPM_INSTALL_COMMAND}` in {REPO_ROOT}"
            )
        # npx is avoided on purpose: killing npx leaves its node child running.
        cmd = [
            node,
            str(DYNALITE_CLI),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # DynamoDB takes seconds to create a table; tests should not.
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ]
        if data_path is not None:
            cmd += ["--path", data_path]
        return cmd
    raise ValueError(f"unknown engine {name!r}; expected one of {ENGINE_NAMES}")


class LocalEngine:
    """A running local engine; stop it explicitly, with ``with``, or let atexit do it."""

    def __init__(self, name: str, *, port: int, data_path: str | None = None) -> None:
        self.name = name
        self.port = port
        self.data_path = data_path
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._cmd = _command(name, port, data_path)
        fd, log_path = tempfile.mkstemp(prefix=f"{name}-{port}-", suffix=".log")
        os.close(fd)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **config: Any) -> DynamoDBClient:
        return engine_client(self.endpoint_url, **config)

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - limit))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            # The child keeps its own copy of the log descriptor; a new session keeps a
            # Ctrl-C aimed at pytest from killing the server before the fixtures stop it.
            self._proc = subprocess.Popen(
                self._cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPO_ROOT),
                start_new_session=True,
            )
        with _live_lock:
            _live.add(self)

    def _wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        client = self.client(
            connect_timeout=0.5,
            read_timeout=2,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        try:
            while time.monotonic() < deadline:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    code = None if proc is None else proc.returncode
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} exited with code {code} before it was ready on "
                        f"{self.endpoint_url}; log tail:\n{self.log_tail()}"
                    )
                try:
                    client.list_tables(Limit=1)
                    return
                except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                    last_error = exc
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer ListTables on {self.endpoint_url} within "
            f"{timeout:.0f} s (last error: {last_error!r}); log tail:\n{self.log_tail()}"
        )

    def start(self) -> LocalEngine:
        with self._lock:
            if self.running:
                return self
            self._spawn()
        self._wait_ready()
        return self

    def stop(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            with _live_lock:
                _live.discard(self)
            if proc is None:
                return
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:
                proc.wait()

    def restart(self) -> LocalEngine:
        """Stop and start again on the same port (and data path, if any)."""
        self.stop()
        return self.start()

    def reset(self) -> None:
        """Forget every table, so the next test starts from an empty engine."""
        if self.name == "moto":
            request = urllib.request.Request(
                f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            return
        client = self.client(retries={"mode": "standard", "max_attempts": 3})
        try:
            for page in client.get_paginator("list_tables").paginate():
                for table in page.get("TableNames", []):
                    client.delete_table(TableName=table)
        finally:
            client.close()

    def remove_log(self) -> None:
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.remove_log()

    def __repr__(self) -> str:
        return f"LocalEngine({self.name!r}, {self.endpoint_url!r}, pid={self.pid})"


def start_engine(name: str, *, data_path: str | None = None) -> LocalEngine:
    """Start ``name`` ("moto" or "dynalite") on a free 127.0.0.1 port and wait until ready.

    ``data_path`` makes dynalite keep its tables on disk, so they survive ``restart()``;
    moto always keeps them in memory only.
    """
    if data_path is not None and name != "dynalite":
        raise ValueError("only dynalite can persist data (data_path)")
    last_error: RuntimeError | None = None
    # The free port is only reserved until we close the probe socket, so another process
    # can take it before the engine binds; a fresh port usually fixes that.
    for _ in range(3):
        engine = LocalEngine(name, port=free_port(), data_path=data_path)
        try:
            return engine.start()
        except RuntimeError as exc:
            engine.stop()
            engine.remove_log()
            last_error = exc
            if "exited with code" not in str(exc):
                raise
    assert last_error is not None
    raise last_error


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        engines = list(_live)
    for engine in engines:
        engine.stop()
        engine.remove_log()
