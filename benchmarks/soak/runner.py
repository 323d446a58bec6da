"""Drive the soak: engine, fault proxy, gunicorn, the simulated devices and the phases.

Everything listens on 127.0.0.1 and stops by itself: dynalite, the fault proxy in this
process, gunicorn serving ``benchmarks.soak.app`` through the proxy. One thread per device
sends requests one at a time; the main thread runs the phases, turning each fault on and
off, and gathers the figures.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dynamodb_session_flask import create_table
from tests.engines import (
    DUMMY_ACCESS_KEY,
    DUMMY_SECRET_KEY,
    REGION,
    REPO_ROOT,
    LocalEngine,
    start_engine,
)
from tests.fault_proxy import FaultProxy

from . import READY_LOGGER, READY_MESSAGE
from .model import Model, Outcome, Violation

WRITES = ("PutItem", "UpdateItem", "DeleteItem")
#: A device's request gives up after this long (then counts as "no answer").
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
#: Weights of a device's next action (after a failure the next one is always a read).
ACTION_WEIGHTS = {
    "read": 40,
    "set": 30,
    "login": 8,
    "logout": 5,
    "end-others": 5,
    "replay": 12,
}
DATA_KEYS = ("a", "b", "c", "d")
#: Session ids as the package makes them: 32 random bytes, URL-safe base64.
_ID_TOKENS = re.compile(r"[A-Za-z0-9_-]{43,}")


@dataclass(frozen=True)
class Settings:
    seconds: float = 240.0
    users: int = 16
    workers: int = 4
    threads: int = 4
    #: A device's pause between requests: uniform in [0, 2 * think].
    think: float = 0.25
    seed: int = 1
    engine: str = "dynalite"


@dataclass
class Phase:
    name: str
    fault: str
    seconds: float
    #: How long the fault stays on from the phase's start (0: no fault).
    fault_seconds: float
    #: Turns the fault on (``None``: a quiet phase).
    start_fault: Callable[[Soak], None] | None = None
    # Filled in as the phase runs.
    started: float = 0.0
    fault_on: float | None = None
    fault_off: float | None = None
    ended: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)
    lost_applied: int = 0
    worker_rss_mib: float = 0.0


@dataclass
class PhaseFigures:
    name: str
    fault: str
    seconds: float
    requests: int
    ok: int
    unavailable: int
    other: int
    violations: int
    violation_kinds: dict[str, int]
    #: Seconds from the fault's end to the end of the phase's last failed request.
    recovery: float | None
    worker_rss_mib: float
    injected: int
    lost_applied: int


@dataclass
class Result:
    settings: Settings
    date: str
    phases: list[PhaseFigures]
    violations: list[Violation]
    leaked_ids: int
    log_lines: int
    tracebacks: int
    devices: int
    recovery_window: float
    #: Requests sent, by action ("read", "set", "login", ..., "replay").
    actions: dict[str, int]

    @property
    def failed(self) -> bool:
        return bool(self.violations) or self.leaked_ids > 0


def plan(seconds: float) -> tuple[list[Phase], float]:
    """The phases of a run of about ``seconds``, and the recovery window after each fault.

    A quiet phase first and last; between them six fault phases of equal length, each a
    fault followed by a quiet recovery window.
    """
    quiet = max(5.0, 0.08 * seconds)
    each = max(6.0, (seconds - 2 * quiet) / 6)
    recovery = min(10.0, max(4.0, 0.3 * each))
    on = max(2.0, each - recovery)

    def lose_answers(soak: Soak) -> None:
        for operation in WRITES:
            soak.proxy.lose_answer(operation, times=None, rate=0.2)

    phases = [
        Phase("baseline", "none", quiet, 0.0),
        Phase(
            "throttling",
            "25% of DynamoDB calls throttled",
            each,
            on,
            lambda soak: soak.proxy.throttle(rate=0.25),
        ),
        Phase(
            "reset before engine",
            "15% of calls reset before reaching the engine",
            each,
            on,
            lambda soak: soak.proxy.drop(rate=0.15),
        ),
        Phase(
            "latency",
            "25% of calls answered 500 ms late",
            each,
            on,
            lambda soak: soak.proxy.delay(0.5, rate=0.25),
        ),
        Phase(
            "reset after engine",
            "20% of writes applied, then the answer lost (connection reset)",
            each,
            on,
            lose_answers,
        ),
        Phase(
            "outage",
            f"every call reset for {min(20.0, on):.0f} s",
            max(each, min(20.0, on) + recovery),
            min(20.0, on),
            lambda soak: soak.proxy.drop(),
        ),
        Phase(
            "killed worker",
            "one gunicorn worker SIGKILLed",
            each,
            0.5,
            lambda soak: soak.kill_worker(),
        ),
        Phase("final", "none", quiet, 0.0),
    ]
    return phases, recovery


def _server_environment(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SOAK_", "DYNAMODB_", "DEMO_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class _Answer:
    status: int
    data: Mapping[str, str] | None
    cookie: str | None
    loaded: bool = False


def _id_cookie(headers: list[str]) -> str | None:
    """What the answer did to the ``id`` cookie: ``None`` nothing, ``""`` expired it."""
    result: str | None = None
    for header in headers:
        first, _, attributes = header.partition(";")
        name, _, value = first.strip().partition("=")
        if name != "id":
            continue
        lowered = attributes.lower()
        expired = not value or "max-age=0" in lowered or "01 jan 1970" in lowered
        result = "" if expired else value.strip('"')
    return result


class Soak:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.model = Model()
        self.phases, self.recovery = plan(settings.seconds)
        self._lock = threading.Lock()
        #: (phase index, status, started, finished) of every request.
        self.outcomes: list[tuple[int, int, float, float]] = []
        self._current = 0
        #: Fault windows, (on, off or None while on), each followed by ``recovery``.
        self._windows: list[tuple[float, float | None]] = []
        self._stop = threading.Event()
        self.engine: LocalEngine
        self.proxy: FaultProxy
        self.gunicorn: subprocess.Popen[bytes]
        self.port = 0
        self.log_path = workdir / "gunicorn.log"
        #: How long gunicorn took to replace the killed worker.
        self.respawn_seconds: float | None = None
        #: Requests sent, by action.
        self.actions: Counter[str] = Counter()

    # -- servers ------------------------------------------------------------------------

    def start(self) -> None:
        self.engine = start_engine(self.settings.engine)
        table = f"soak-{uuid.uuid4().hex[:8]}"
        admin = self.engine.client()
        create_table(table, client=admin)
        admin.close()
        self.proxy = FaultProxy(self.engine.endpoint_url, seed=self.settings.seed).start()
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.settings.workers),
            "--threads",
            str(self.settings.threads),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
            "benchmarks.soak.app:app",
        ]
        env = _server_environment(SOAK_ENDPOINT_URL=self.proxy.url, SOAK_TABLE_NAME=table)
        with open(self.log_path, "wb") as log:
            self.gunicorn = subprocess.Popen(
                command,
                cwd=str(REPO_ROOT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_serving()

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.gunicorn.returncode}:\n"
                    + self.log_path.read_text(errors="replace")
                )
            workers = _children(self.gunicorn.pid)
            if len(workers) >= self.settings.workers and self._request("GET", "/read", None)[0]:
                return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not serve in time:\n" + self.log_path.read_text())

    def stop(self) -> None:
        gunicorn = getattr(self, "gunicorn", None)
        if gunicorn is not None and gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
                gunicorn.wait()
        proxy = getattr(self, "proxy", None)
        if proxy is not None:
            proxy.stop()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.stop()
            engine.remove_log()

    def workers(self) -> list[int]:
        return _children(self.gunicorn.pid)

    def kill_worker(self) -> None:
        """SIGKILL one worker; a thread times how long until its replacement has loaded
        the app (its "app ready" log line)."""
        workers = self.workers()
        if not workers:
            return
        victim = random.Random(self.settings.seed).choice(workers)
        offset = self.log_path.stat().st_size
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        def wait_for_replacement() -> None:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                seen = b""
                while not self._stop.is_set():
                    seen += log.read()
                    for line in seen.decode(errors="replace").splitlines():
                        pid, _, rest = line.partition(" ")
                        ready = rest.endswith(f"{READY_LOGGER}: {READY_MESSAGE}")
                        if ready and pid.isdigit() and int(pid) != victim:
                            self.respawn_seconds = time.monotonic() - killed
                            return
                    time.sleep(0.02)

        threading.Thread(target=wait_for_replacement, daemon=True).start()

    # -- requests -----------------------------------------------------------------------

    def _request(self, method: str, path: str, sid: str | None) -> tuple[int, bytes, list[str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Cookie": f"id={sid}"} if sid else {}
        if method == "POST":
            headers["Content-Length"] = "0"
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            return response.status, body, response.msg.get_all("Set-Cookie") or []
        except (OSError, http.client.HTTPException):
            return 0, b"", []
        finally:
            conn.close()

    def _send(self, method: str, path: str, sid: str | None) -> _Answer:
        status, body, cookies = self._request(method, path, sid)
        data: Mapping[str, str] | None = None
        loaded = False
        if status == 200:
            try:
                answer = json.loads(body)
                data, loaded = answer["data"], answer["loaded"]
            except (ValueError, KeyError, TypeError):
                status = -1  # an answer the app never gives
        return _Answer(status, data, _id_cookie(cookies), loaded)

    def _failure_allowed(self, started: float, finished: float) -> bool:
        """Whether the request overlapped a fault or the recovery window after one."""
        with self._lock:
            for on, off in self._windows:
                until = float("inf") if off is None else off + self.recovery
                if started <= until and finished >= on:
                    return True
        return False

    def _drive(self, name: str, user: str, seed: int) -> None:
        rng = random.Random(seed)
        actions, weights = list(ACTION_WEIGHTS), list(ACTION_WEIGHTS.values())
        device = self.model.devices[name]
        counter = 0
        read_next = False
        while not self._stop.is_set():
            action = "read" if read_next else rng.choices(actions, weights)[0]
            sid = device.cookie
            key = value = ""
            presented = sid
            if action == "read":
                method, path = "GET", "/read"
            elif action == "set":
                counter += 1
                key, value = rng.choice(DATA_KEYS), f"{name}.{counter}"
                method, path = "POST", "/set?" + urllib.parse.urlencode({"k": key, "v": value})
            elif action == "login":
                value = user
                method, path = "POST", "/login?" + urllib.parse.urlencode({"user": user})
            elif action == "logout":
                method, path = "POST", "/logout"
            elif action == "end-others":
                method, path = "POST", "/end-others"
            else:
                dead = self.model.dead_ids(time.monotonic())
                if not dead:
                    continue
                presented = rng.choice(dead)
                method, path = "GET", "/read"
            started = time.monotonic()
            self.model.begin(name, action, started)
            answer = self._send(method, path, presented)
            finished = time.monotonic()
            with self._lock:
                # Counted in the phase it ended in, where what it met most likely was.
                phase = self._current
            outcome = Outcome(
                action,
                started,
                finished,
                answer.status,
                answer.data,
                answer.cookie,
                key=key,
                value=value,
                presented=presented,
                loaded=answer.loaded,
            )
            found = self.model.record(
                name, outcome, failure_allowed=self._failure_allowed(started, finished)
            )
            for violation in found:
                print(
                    f"  VIOLATION [{self.phases[phase].name}] {violation.kind}: "
                    f"{violation.device} {violation.action}: {violation.detail}",
                    flush=True,
                )
            with self._lock:
                self.outcomes.append((phase, answer.status, started, finished))
                self.actions[action] += 1
            read_next = answer.status != 200 and action != "replay"
            self._stop.wait(rng.uniform(0, 2 * self.settings.think))

    # -- phases -------------------------------------------------------------------------

    def run(self) -> Result:
        rng = random.Random(self.settings.seed)
        threads = []
        for u in range(self.settings.users):
            user = f"user{u:02d}"
            for d in range(rng.choice((2, 3))):
                name = f"{user}/dev{d}"
                self.model.add_device(name, user)
                threads.append(
                    threading.Thread(
                        target=self._drive,
                        args=(name, user, rng.randrange(2**32)),
                        name=name,
                        daemon=True,
                    )
                )
        for thread in threads:
            thread.start()
        for index, phase in enumerate(self.phases):
            self._run_phase(index, phase)
        self._stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
        if self.respawn_seconds is not None:
            for phase in self.phases:
                if phase.name == "killed worker":
                    phase.fault += f" (replaced in {self.respawn_seconds:.1f} s)"
        return self._result(len(threads))

    def _run_phase(self, index: int, phase: Phase) -> None:
        before = Counter(self.proxy.injected)
        lost_before = len(self.proxy.lost_answers)
        with self._lock:
            self._current = index
        phase.started = time.monotonic()
        print(f"-- {phase.name}: {phase.fault} ({phase.seconds:.0f} s)", flush=True)
        if phase.start_fault is not None:
            phase.fault_on = time.monotonic()
            with self._lock:
                self._windows.append((phase.fault_on, None))
            phase.start_fault(self)
            time.sleep(phase.fault_seconds)
            self.proxy.clear()
            phase.fault_off = time.monotonic()
            with self._lock:
                self._windows[-1] = (phase.fault_on, phase.fault_off)
        time.sleep(max(0.0, phase.started + phase.seconds - time.monotonic()))
        phase.ended = time.monotonic()
        phase.injected = Counter(self.proxy.injected) - before
        phase.lost_applied = sum(a.applied for a in self.proxy.lost_answers[lost_before:])
        phase.worker_rss_mib = max((_rss_mib(pid) for pid in self.workers()), default=0.0)

    def _result(self, devices: int) -> Result:
        figures = []
        by_phase: dict[int, list[Violation]] = {}
        for violation in self.model.violations:
            by_phase.setdefault(self._phase_at(violation.at), []).append(violation)

        for index, phase in enumerate(self.phases):
            rows = [o for o in self.outcomes if o[0] == index]
            failed_ends = [finished for _, status, _, finished in rows if status != 200]
            recovery: float | None = None
            if phase.fault_off is not None and failed_ends:
                recovery = max(0.0, max(failed_ends) - phase.fault_off)
            kinds: dict[str, int] = {}
            for violation in by_phase.get(index, []):
                kinds[violation.kind] = kinds.get(violation.kind, 0) + 1
            figures.append(
                PhaseFigures(
                    name=phase.name,
                    fault=phase.fault,
                    seconds=phase.ended - phase.started,
                    requests=len(rows),
                    ok=sum(1 for row in rows if row[1] == 200),
                    unavailable=sum(1 for row in rows if row[1] == 503),
                    other=sum(1 for row in rows if row[1] not in (200, 503)),
                    violations=sum(kinds.values()),
                    violation_kinds=kinds,
                    recovery=recovery,
                    worker_rss_mib=phase.worker_rss_mib,
                    injected=sum(phase.injected.values()),
                    lost_applied=phase.lost_applied,
                )
            )
        log = self.log_path.read_text(errors="replace")
        return Result(
            settings=self.settings,
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            phases=figures,
            violations=list(self.model.violations),
            leaked_ids=leaked_ids(log, self.model.seen_ids),
            log_lines=log.count("\n"),
            tracebacks=log.count("Traceback (most recent call last)"),
            devices=devices,
            recovery_window=self.recovery,
            actions=dict(self.actions),
        )

    def _phase_at(self, moment: float) -> int:
        """The phase running at ``moment``: the last one that started before it."""
        for index in range(len(self.phases) - 1, -1, -1):
            if self.phases[index].started and self.phases[index].started <= moment:
                return index
        return 0


def leaked_ids(log: str, ids: set[str]) -> int:
    """How many of ``ids`` appear in ``log``, anywhere in a longer token included."""
    found: set[str] = set()
    for token in _ID_TOKENS.findall(log):
        for start in range(len(token) - 42):
            window = token[start : start + 43]
            if window in ids:
                found.add(window)
    return len(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def soak(settings: Settings, *, keep_log: Path | None = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        runner = Soak(settings, Path(workdir))
        try:
            began = time.monotonic()
            runner.start()
            print(f"serving in {time.monotonic() - began:.1f} s", flush=True)
            result = runner.run()
            print(f"phases done at {time.monotonic() - began:.1f} s", flush=True)
        finally:
            runner.stop()
            print(f"stopped at {time.monotonic() - began:.1f} s", flush=True)
            if keep_log is not None and runner.log_path.exists():
                keep_log.write_bytes(runner.log_path.read_bytes())
        return result
