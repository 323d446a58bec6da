"""What each simulated device should see, and the answers that break a guarantee.

Every device sends one request at a time and keeps the session cookie as a browser would.
The model tracks, per device, the session its cookie names and the values each key may
hold: one value once a write of it was acknowledged, several while a write's outcome is
unknown (a 503, a connection cut). A read then checks the answer against the model:

* an acknowledged write (200) is visible on the device's next read, unless a later write,
  a logout or an "end other sessions" superseded it;
* a session logged out, rotated away by a login, or ended by another device's
  "end other sessions" never loads again, on its device or replayed by anyone;
* a 200 never silently drops the session (a login whose answer expires the cookie, a
  write answered from a brand-new session) unless another device may have ended it;
* no answer is a 500, and a 503 or a request left without an answer happens only while a
  fault is on or within its recovery window (the caller says which, see ``Outcome``).

Times are ``time.monotonic()`` seconds. Devices of one user run concurrently, so an
"end other sessions" whose request overlapped another device's request makes that
device's outcome uncertain rather than wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Callable

#: A key not in the session.
ABSENT = "\x00absent"
#: Reads of the per-user index may miss a session bound this recently (the library says
#: "within the last second or so"); an "end other sessions" that started sooner after the
#: login only may end it.
INDEX_LAG = 1.0

ACTIONS = ("read", "set", "login", "logout", "end-others", "replay")

#: Every kind of violation, with what it means.
KINDS = {
    "500": "an answer was a 500",
    "failure outside a fault": "a 503, or no answer, with no fault on or just over",
    "unexpected status": "an answer neither 200, 500 nor 503",
    "acknowledged write not visible": (
        "a read did not show a value whose write was acknowledged and not superseded"
    ),
    "acknowledged write dropped": "a write answered 200 but expired the cookie of a live session",
    "ended session loaded again": "an id logged out, rotated away or ended loaded data",
    "session lost": (
        "a session the model holds live was gone, with no logout or end of it to explain it"
    ),
    "session dropped by a login": (
        "a login answered 200 but expired the cookie: the old session was ended and no new "
        "one created, though no other device had ended it"
    ),
    "no new id": "a login answered 200 without a new id",
    "no cookie": "a write answered 200 without an id",
    "logout kept a session": "a logout answered with a live id",
    "data without a session": "a request that presented no id loaded data",
    "id changed": "a read moved the session to another id",
}

#: ``violation(kind, detail)``: how the checks below report what they found.
_Report = Callable[[str, str], None]


@dataclass
class Outcome:
    """One request as the device saw it."""

    action: str
    started: float
    finished: float
    #: HTTP status, or 0 when no answer came (connection refused or cut, timeout).
    status: int
    #: The session's data in the answer (200s only).
    data: Mapping[str, str] | None = None
    #: The id cookie the answer set: ``None`` none, ``""`` expired, else the new value.
    cookie: str | None = None
    #: For ``set``: the key and value written; for ``login``: the user.
    key: str = ""
    value: str = ""
    #: The id the request presented (``replay``: the dead id replayed).
    presented: str | None = None
    #: Whether the request found a stored session (the app's answer says).
    loaded: bool = False


@dataclass
class Violation:
    kind: str
    device: str
    action: str
    #: When the request was answered.
    at: float
    detail: str


@dataclass
class Tracked:
    """The session a device's cookie names."""

    sid: str
    #: Key -> the values a read may show (``ABSENT``: not there).
    expected: dict[str, set[str]]
    #: An interval in which the session was seen live: created, read or written.
    live_from: float
    live_to: float
    #: The user it is bound to (by a login), if certainly bound.
    user: str | None = None
    #: When the login that bound it was acknowledged.
    bound_at: float = 0.0
    #: A request that may have ended it (a logout or login answered 503) went unanswered.
    maybe_dead: bool = False
    #: Its content is unknown (an id set by an answer that was not a 200): any data read
    #: next is accepted and becomes the model.
    unknown: bool = False


@dataclass
class EndEvent:
    """An "end other sessions" request of one user: when it ran (``finished`` is infinite
    while it runs), and whether it certainly ended the other devices' sessions (a 200 from
    a session bound to that user)."""

    device: str
    started: float
    finished: float = float("inf")
    certain: bool = False


@dataclass
class Device:
    name: str
    user: str
    session: Tracked | None = None
    #: Ids this device saw die, with the time from which they must never load.
    dead: list[tuple[str, float]] = field(default_factory=list)
    #: Its "end other sessions" request under way.
    ending: EndEvent | None = None

    @property
    def cookie(self) -> str | None:
        return None if self.session is None else self.session.sid


def _exact(data: Mapping[str, str]) -> dict[str, set[str]]:
    return {key: {value} for key, value in data.items()}


class Model:
    """The expected state of every device, shared by the threads driving them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.devices: dict[str, Device] = {}
        self._events: dict[str, list[EndEvent]] = {}
        self.violations: list[Violation] = []
        #: Every session id any answer carried, to look for in the server's logs.
        self.seen_ids: set[str] = set()

    def add_device(self, name: str, user: str) -> Device:
        device = Device(name, user)
        with self._lock:
            self.devices[name] = device
            self._events.setdefault(user, [])
        return device

    def dead_ids(self, before: float) -> list[str]:
        """Ids that died before ``before``, any device's: candidates for a replay."""
        with self._lock:
            return [sid for d in self.devices.values() for sid, at in d.dead if at < before]

    # -- checking one outcome ---------------------------------------------------------

    def begin(self, name: str, action: str, started: float) -> None:
        """Call before sending a request. An "end other sessions" counts from the moment
        it is sent: another device's request may see its effect before it is answered."""
        if action != "end-others":
            return
        with self._lock:
            device = self.devices[name]
            device.ending = EndEvent(name, started)
            self._events[device.user].append(device.ending)

    def _end_finished(self, device: Device, outcome: Outcome, certain: bool) -> None:
        event = device.ending
        if event is None:  # begin() was not called: count it from now on
            event = EndEvent(device.name, outcome.started)
            self._events[device.user].append(event)
        event.finished, event.certain = outcome.finished, certain
        device.ending = None

    def record(self, name: str, outcome: Outcome, *, failure_allowed: bool) -> list[Violation]:
        """Check ``outcome`` of device ``name`` against the model and update the model.

        :param failure_allowed: whether a 503, or no answer, is expected at this time (a
            fault phase or its recovery window).
        :returns: the violations found (also appended to ``violations``).
        """
        with self._lock:
            device = self.devices[name]
            found: list[Violation] = []

            def violation(kind: str, detail: str) -> None:
                assert kind in KINDS, kind
                # One per request: the first thing found wrong is what went wrong.
                if not found:
                    found.append(Violation(kind, name, outcome.action, outcome.finished, detail))

            if outcome.cookie:
                self.seen_ids.add(outcome.cookie)
            if outcome.status == 200:
                self._succeeded(device, outcome, violation)
            else:
                if outcome.status == 500:
                    violation("500", f"{outcome.action} answered 500")
                elif outcome.status == 503 or outcome.status == 0:
                    if not failure_allowed:
                        what = "503" if outcome.status == 503 else "no answer"
                        violation(
                            "failure outside a fault", f"{outcome.action}: {what} with no fault on"
                        )
                else:
                    violation("unexpected status", f"{outcome.action} answered {outcome.status}")
                self._failed(device, outcome)
            self.violations.extend(found)
            return found

    def _state_at_load(self, device: Device, outcome: Outcome) -> str:
        """The device's session when the request loaded it, as far as the model knows:
        "none", "live", "ended" or "maybe"."""
        tracked = device.session
        if tracked is None:
            return "none"
        if tracked.unknown:
            return "maybe"
        state = "maybe" if tracked.maybe_dead else "live"
        for event in self._events.get(device.user, []):
            if event.device == device.name or event.finished < tracked.live_from:
                continue  # its own requests, or over before the session was seen live
            if event.started > outcome.finished:
                continue  # after this request: counted on the next one
            certain = (
                event.certain
                and tracked.user == device.user
                and event.started > tracked.live_to
                and event.started > tracked.bound_at + INDEX_LAG
                and event.finished < outcome.started
            )
            if certain:
                return "ended"
            if tracked.user is not None or "user" in tracked.expected:
                state = "maybe"
        return state

    def _check_data(
        self, tracked: Tracked, data: Mapping[str, str], skip: str, violation: _Report
    ) -> None:
        if tracked.unknown:
            return
        for key in sorted(set(tracked.expected) | set(data)):
            if key == skip:
                continue
            allowed = tracked.expected.get(key, {ABSENT})
            got = data.get(key, ABSENT)
            if got not in allowed:
                shown = sorted("(absent)" if v == ABSENT else v for v in allowed)
                violation(
                    "acknowledged write not visible",
                    f"key {key!r}: read {'(absent)' if got == ABSENT else got!r}, "
                    f"expected {' or '.join(shown)}",
                )
                return

    def _bury(self, device: Device, sid: str | None, at: float) -> None:
        if sid is not None:
            device.dead.append((sid, at))

    def _succeeded(self, device: Device, outcome: Outcome, violation: _Report) -> None:
        action, data = outcome.action, dict(outcome.data or {})
        tracked = device.session
        state = self._state_at_load(device, outcome)
        old = tracked.sid if tracked is not None else None
        if action == "replay":
            if outcome.loaded or data or (outcome.cookie and outcome.cookie == outcome.presented):
                violation(
                    "ended session loaded again",
                    f"a dead id replayed loaded {sorted(data)} (dead before the request)",
                )
            return
        if action == "logout":
            if outcome.cookie:
                violation("logout kept a session", "a logout answered with a live id")
            self._bury(device, old, outcome.finished)
            device.session = None
            return

        # What the view wrote before answering, not what it loaded.
        skip = outcome.key if action == "set" else ("user" if action == "login" else "")
        same_id = outcome.cookie is not None and outcome.cookie != "" and outcome.cookie == old
        new_id = outcome.cookie is not None and outcome.cookie != "" and outcome.cookie != old
        if outcome.loaded and tracked is None:
            violation("data without a session", f"{action} loaded {sorted(data)} with no id")
        elif outcome.loaded and tracked is not None:
            if state == "ended":
                violation(
                    "ended session loaded again",
                    f"{action} loaded {sorted(data)} from a session ended before it started",
                )
            self._check_data(tracked, data, skip, violation)
        elif tracked is not None and state == "live" and not tracked.unknown:
            violation(
                "session lost",
                f"{action} found no session; the model holds {sorted(tracked.expected)}",
            )

        if action in ("read", "end-others"):
            if outcome.cookie == "" or not outcome.loaded:
                self._bury(device, old, outcome.finished)
                device.session = None
            elif tracked is not None:
                if new_id:
                    violation("id changed", f"{action} moved the session to another id")
                tracked.expected = _exact(data)
                tracked.live_from, tracked.live_to = outcome.started, outcome.finished
                tracked.maybe_dead = tracked.unknown = False
                if tracked.user is None and data.get("user") == device.user:
                    # Bound before it was seen; when exactly is not known, so late.
                    tracked.user, tracked.bound_at = device.user, outcome.finished
            if action == "end-others":
                session = device.session
                certain = (
                    session is not None
                    and session.user == device.user
                    and data.get("user") == device.user
                )
                self._end_finished(device, outcome, certain)
            return

        if action == "set":
            if same_id and tracked is not None:
                tracked.expected = _exact(data)
                tracked.live_from, tracked.live_to = outcome.started, outcome.finished
                tracked.maybe_dead = tracked.unknown = False
            elif new_id:
                self._bury(device, old, outcome.finished)
                assert outcome.cookie
                device.session = Tracked(
                    outcome.cookie, _exact(data), outcome.started, outcome.finished
                )
            else:
                if state == "live" and tracked is not None and not tracked.unknown:
                    violation(
                        "acknowledged write dropped",
                        "set answered 200 and expired the cookie of a live session",
                    )
                elif outcome.cookie is None:
                    violation("no cookie", "a write answered 200 without an id")
                self._bury(device, old, outcome.finished)
                device.session = None
            return

        assert action == "login"
        if new_id:
            assert outcome.cookie
            self._bury(device, old, outcome.finished)
            device.session = Tracked(
                outcome.cookie,
                _exact(data),
                outcome.started,
                outcome.finished,
                user=outcome.value,
                bound_at=outcome.finished,
            )
            return
        if outcome.cookie == "" and state == "live" and tracked is not None:
            violation(
                "session dropped by a login",
                "login answered 200 but expired the cookie: the old session is gone and no "
                "new one was created",
            )
        elif outcome.cookie is None or outcome.cookie == old:
            violation("no new id", "login answered 200 without moving to a new id")
        self._bury(device, old, outcome.finished)
        device.session = None

    def _failed(self, device: Device, outcome: Outcome) -> None:
        """No usable answer: the request may or may not have done what it asked."""
        tracked = device.session
        action = outcome.action
        if action == "replay":
            return  # the id replayed is not the device's session
        if action == "end-others":
            self._end_finished(device, outcome, certain=False)
        if outcome.cookie == "":
            device.session = None
            return
        if outcome.cookie and (tracked is None or outcome.cookie != tracked.sid):
            device.session = Tracked(
                outcome.cookie, {}, outcome.started, outcome.finished, unknown=True
            )
            return
        if tracked is None:
            return
        if action == "set":
            tracked.expected.setdefault(outcome.key, {ABSENT}).add(outcome.value)
        elif action in ("login", "logout"):
            tracked.maybe_dead = True


def count_by_kind(violations: Iterable[Violation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for found in violations:
        counts[found.kind] = counts.get(found.kind, 0) + 1
    return counts
