"""Throughput under real concurrency: each app served by waitress in its own process,
driven over keep-alive HTTP connections from this process for a bounded time.

Only 127.0.0.1 is ever contacted; every loop stops at its deadline.
"""

from __future__ import annotations

import http.client
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import IO, Callable

from .mix import Step, example_steps, percentile, user_steps

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
RSS_SAMPLE_SECONDS = 0.25
MAX_ERROR_SAMPLES = 5


@dataclass
class LoadResult:
    name: str
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.requests if self.requests else 0.0

    def latency_ms(self, quantile: float) -> float:
        return percentile(self.latencies, quantile) * 1000

    @property
    def rss_start_mib(self) -> float:
        return self.rss_kib[0] / 1024 if self.rss_kib else 0.0

    @property
    def rss_end_mib(self) -> float:
        return self.rss_kib[-1] / 1024 if self.rss_kib else 0.0

    @property
    def rss_growth_mib(self) -> float:
        return self.rss_end_mib - self.rss_start_mib


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the parenthesised command name; utime and stime are 14th and 15th.
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Server:
    """One app served by ``benchmarks.serve`` in a child process."""

    def __init__(self, implementation: str, endpoint_url: str, payload: str) -> None:
        self._log: IO[bytes] = tempfile.TemporaryFile()
        # Local engines do not check credentials; real ones must never reach a test server.
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve", implementation, endpoint_url, payload],
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        stdout = self.process.stdout
        assert stdout is not None
        # The child prints one whole line once it is bound, or exits (closing the pipe).
        ready, _, _ = select.select([stdout], [], [], START_TIMEOUT)
        line = stdout.readline().decode() if ready else ""
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}\n{self.log()}")
        return int(line.split()[1])

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


class _Visitor:
    """One simulated browser: a keep-alive connection and a cookie jar."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT
            )
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(self, step: Step) -> str | None:
        """Send one request; the error text, or ``None`` when it went as expected."""
        method, path, form = step.method, step.path, step.form
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection = self._connect()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.msg.get_all("Set-Cookie") or []:
                self._store_cookie(header)
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return f"{method} {path}: {exc!r}"
        if response.status >= 400:
            return f"{method} {path}: HTTP {response.status}"
        if step.expect is not None and step.expect not in text:
            return f"{method} {path}: unexpected body {text[:120]!r}"
        return None

    def _store_cookie(self, header: str) -> None:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            if morsel["max-age"] == "0" or not morsel.value or "1970" in morsel["expires"]:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value


def drive(
    port: int, seconds: float, concurrency: int, steps: Callable[[str], list[Step]]
) -> LoadResult:
    """Visitors run the mix back to back until the deadline; returns what they saw."""
    result = LoadResult("")
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def visitor(number: int) -> None:
        browser = _Visitor(port)
        visit = 0
        latencies: list[float] = []
        errors: list[str] = []
        try:
            while time.monotonic() < deadline:
                user = f"load-{number}-{visit}"
                visit += 1
                for step in steps(user):
                    if time.monotonic() >= deadline:
                        break
                    started = time.perf_counter()
                    error = browser.request(step)
                    latencies.append(time.perf_counter() - started)
                    if error is not None:
                        errors.append(error)
                        break
                browser.cookies.clear()
        finally:
            browser.close()
            with lock:
                result.latencies.extend(latencies)
                result.requests += len(latencies)
                result.errors += len(errors)
                room = max(0, MAX_ERROR_SAMPLES - len(result.error_samples))
                result.error_samples.extend(errors[:room])

    started = time.monotonic()
    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def measure(
    name: str,
    implementation: str,
    endpoint_url: str,
    payload: str,
    seconds: float,
    concurrency: int,
    warmup: float,
) -> LoadResult:
    """Serve one app, warm it up, then drive it for ``seconds`` while sampling its memory
    and CPU from /proc."""
    server = Server(implementation, endpoint_url, payload)
    steps = example_steps if implementation == "example" else user_steps
    try:
        warm = drive(server.port, warmup, concurrency, steps)
        pid = server.process.pid
        samples = [rss_kib(pid)]
        cpu_before = cpu_seconds(pid)
        stop = threading.Event()

        def sample_memory() -> None:
            while not stop.wait(RSS_SAMPLE_SECONDS) and server.process.poll() is None:
                samples.append(rss_kib(pid))

        sampler = threading.Thread(target=sample_memory)
        sampler.start()
        try:
            result = drive(server.port, seconds, concurrency, steps)
        finally:
            stop.set()
            sampler.join()
        result.name = name
        # Errors while warming up count too: they are errors of the same server.
        result.errors += warm.errors
        result.error_samples = (warm.error_samples + result.error_samples)[:MAX_ERROR_SAMPLES]
        if server.process.poll() is not None:
            result.errors += 1
            result.error_samples.append(f"server exited: {server.log()}")
            return result
        samples.append(rss_kib(pid))
        result.cpu_seconds = cpu_seconds(pid) - cpu_before
        result.rss_kib = samples
        return result
    finally:
        server.stop()
