"""Web servers the tests start as processes: the demo's serve.py, or gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from .engines import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, REGION, REPO_ROOT

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
#: Environment that could point a demo somewhere else than the test's engine.
FOREIGN_SETTINGS = (
    "DYNAMODB_ENDPOINT_URL",
    "DEMO_REAL_DYNAMODB",
    "DEMO_TABLE_NAME",
    "DEMO_COST_LOG",
    "DEMO_SHOW_WORKER",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


def server_environment(**settings: str) -> dict[str, str]:
    """This process's environment, minus anything pointing elsewhere, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    env.update(
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()
                return
        # Refused before the server listens; timed out while a pre-forking server's
        # listening socket is open but its workers are still importing the app.
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{proc.args!r} did not answer {url} in {READY_TIMEOUT:.0f} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager would; SIGKILL if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def serving(
    command: Sequence[str],
    url: str,
    log: Path,
    env: Mapping[str, str],
    cwd: Path = REPO_ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until it answers ``url``; stop it afterwards, whatever happened."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(proc, url, log)
        yield proc
    finally:
        stop(proc)
