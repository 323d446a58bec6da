"""The request mix, driven in-process through Flask's test client.

Per simulated user: log in (the session gets the user and one of the benchmark's payloads),
read the session on 18 requests, change it once (add to the cart), log out. Every response
is checked, so an implementation that lost its session cannot look cheap.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .metering import Meter, TimedWsgi, Usage

if TYPE_CHECKING:
    from flask import Flask

KINDS = ("login", "read", "change", "logout")
READS_PER_USER = 18
REQUESTS_PER_USER = READS_PER_USER + 3


@dataclass(frozen=True)
class Step:
    kind: str
    method: str
    path: str
    form: dict[str, str] | None
    #: Text the response body must contain; ``None`` to check the status only.
    expect: str | None


def user_steps(user: str, in_cart: int = 0) -> list[Step]:
    """One user's visit to a benchmark app whose login puts ``in_cart`` lines in the cart,
    with the text each response must contain."""
    before, after = f"{user}: {in_cart} in cart", f"{user}: {in_cart + 1} in cart"
    return [
        Step("login", "POST", "/login", {"user": user}, before),
        *[Step("read", "GET", "/", None, before)] * (READS_PER_USER // 2),
        Step("change", "POST", "/cart", {"item": "sku-000042"}, after),
        *[Step("read", "GET", "/", None, after)] * (READS_PER_USER // 2),
        Step("logout", "POST", "/logout", None, "anonymous: 0 in cart"),
    ]


def example_steps(user: str) -> list[Step]:
    """The same visit to the example shop, which answers its forms with redirects."""
    shown = f'<strong id="user">{user}</strong>'
    return [
        Step("login", "POST", "/login", {"user": user}, None),
        *[Step("read", "GET", "/", None, shown)] * (READS_PER_USER // 2),
        Step("change", "POST", "/cart", {"item": "sku-000042"}, None),
        *[Step("read", "GET", "/", None, shown)] * (READS_PER_USER // 2),
        Step("logout", "POST", "/logout", None, None),
    ]


@dataclass
class Subject:
    """One implementation wired for measurement."""

    name: str
    app: Flask
    meter: Meter
    timer: TimedWsgi
    #: Cart lines right after login.
    in_cart: int = 0

    @classmethod
    def wrap(cls, name: str, app: Flask, meter: Meter, in_cart: int = 0) -> Subject:
        timer = TimedWsgi(app.wsgi_app)
        app.wsgi_app = timer  # type: ignore[method-assign]
        return cls(name, app, meter, timer, in_cart)


@dataclass
class RoundResult:
    """One implementation's figures over one round of users."""

    name: str
    usage: Usage = field(default_factory=Usage)
    by_kind: dict[str, Usage] = field(default_factory=dict)
    requests_by_kind: Counter[str] = field(default_factory=Counter)
    cpu_by_kind: dict[str, float] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.wall)

    def per_request(self, value: float) -> float:
        return value / self.requests if self.requests else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.per_request(sum(self.cpu)) * 1000

    def wall_ms(self, quantile: float) -> float:
        return percentile(self.wall, quantile) * 1000


def percentile(values: list[float], quantile: float) -> float:
    """Nearest-rank percentile; exact enough for p50/p99 over thousands of requests."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(quantile * len(ordered)) - 1))
    return ordered[rank]


def run_user(subject: Subject, user: str, result: RoundResult) -> None:
    """One user's visit, with its own cookie jar, added to ``result``."""
    client = subject.app.test_client()
    for step in user_steps(user, subject.in_cart):
        before = subject.meter.snapshot()
        response = client.open(step.path, method=step.method, data=step.form)
        spent = subject.meter.snapshot() - before
        body = response.get_data(as_text=True)
        if response.status_code != 200 or (step.expect and step.expect not in body):
            result.failures.append(
                f"{step.method} {step.path}: {response.status_code} {body[:120]!r}"
            )
        result.usage = result.usage + spent
        result.by_kind[step.kind] = result.by_kind.get(step.kind, Usage()) + spent
        result.requests_by_kind[step.kind] += 1
        cpu = subject.timer.last.cpu
        result.cpu_by_kind[step.kind] = result.cpu_by_kind.get(step.kind, 0.0) + cpu
        result.cpu.append(cpu)
        result.wall.append(subject.timer.last.wall)


def run_round(subject: Subject, users: int, tag: str) -> RoundResult:
    """Every user's visit to one implementation, one after the other."""
    result = RoundResult(subject.name)
    for number in range(users):
        run_user(subject, f"{tag}-{number}", result)
    return result


def run_interleaved(subjects: list[Subject], users: int, tag: str) -> dict[str, RoundResult]:
    """Every user's visit to each implementation, taking turns user by user (in a rotating
    order), so that a burst of other work on the machine falls on all of them alike."""
    results = {subject.name: RoundResult(subject.name) for subject in subjects}
    for number in range(users):
        shift = number % len(subjects)
        for subject in subjects[shift:] + subjects[:shift]:
            run_user(subject, f"{tag}-{number}", results[subject.name])
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
