"""The soak's model (benchmarks/soak/model.py) flags what breaks a guarantee, and only that.

The soak is only as good as its checks: each test feeds the model the answers one device,
or two devices of one user, could see, and asserts what it reports.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.soak.model import Model, Outcome

USER = "u"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def span(self) -> tuple[float, float]:
        self.now += 1.0
        return self.now, self.now + 0.5


def outcome(
    clock: Clock,
    action: str,
    status: int = 200,
    data: Mapping[str, str] | None = None,
    cookie: str | None = None,
    *,
    key: str = "",
    value: str = "",
    loaded: bool = True,
    presented: str | None = None,
) -> Outcome:
    started, finished = clock.span()
    return Outcome(
        action,
        started,
        finished,
        status,
        data if data is not None else ({} if status == 200 else None),
        cookie,
        key=key,
        value=value,
        presented=presented,
        loaded=loaded,
    )


def kinds(model: Model) -> list[str]:
    return [v.kind for v in model.violations]


def logged_in(model: Model, clock: Clock, device: str, sid: str) -> None:
    model.add_device(device, USER)
    model.record(
        device,
        outcome(clock, "login", data={"user": USER}, cookie=sid, value=USER, loaded=False),
        failure_allowed=False,
    )


def test_an_acknowledged_write_must_show_on_the_next_read() -> None:
    model, clock = Model(), Clock()
    logged_in(model, clock, "d", "s1")
    model.record(
        "d",
        outcome(clock, "set", data={"user": USER, "a": "1"}, cookie="s1", key="a", value="1"),
        failure_allowed=False,
    )
    model.record(
        "d", outcome(clock, "read", data={"user": USER}, cookie="s1"), failure_allowed=False
    )
    assert kinds(model) == ["acknowledged write not visible"]


def test_a_write_answered_503_may_or_may_not_have_happened() -> None:
    for seen in ({"user": USER}, {"user": USER, "a": "1"}):
        model, clock = Model(), Clock()
        logged_in(model, clock, "d", "s1")
        model.record("d", outcome(clock, "set", 503, key="a", value="1"), failure_allowed=True)
        model.record("d", outcome(clock, "read", data=seen, cookie="s1"), failure_allowed=False)
        assert kinds(model) == []


def test_a_503_or_a_500_outside_a_fault_is_a_violation() -> None:
    model, clock = Model(), Clock()
    logged_in(model, clock, "d", "s1")
    model.record("d", outcome(clock, "read", 503), failure_allowed=False)
    model.record("d", outcome(clock, "set", 500, key="a", value="1"), failure_allowed=True)
    assert kinds(model) == ["failure outside a fault", "500"]


def test_a_login_that_answers_200_and_drops_the_session_is_a_violation() -> None:
    # Regenerate's conditional delete retried after its answer was lost: the retry finds
    # nothing live, so nothing is created and the cookie is expired.
    model, clock = Model(), Clock()
    logged_in(model, clock, "d", "s1")
    model.record(
        "d",
        outcome(clock, "login", data={"user": USER}, cookie="", value=USER),
        failure_allowed=True,
    )
    assert kinds(model) == ["session dropped by a login"]


def test_a_logged_out_or_rotated_id_must_never_load_again() -> None:
    model, clock = Model(), Clock()
    logged_in(model, clock, "d", "s1")
    model.record("d", outcome(clock, "logout", cookie=""), failure_allowed=False)
    assert model.dead_ids(clock.now + 10) == ["s1"]
    model.record(
        "d",
        outcome(clock, "replay", data={}, loaded=False, presented="s1"),
        failure_allowed=False,
    )
    assert kinds(model) == []
    model.record(
        "d",
        outcome(clock, "replay", data={"user": USER}, presented="s1"),
        failure_allowed=False,
    )
    assert kinds(model) == ["ended session loaded again"]


def test_end_other_sessions_ends_the_other_devices_session() -> None:
    model, clock = Model(), Clock()
    logged_in(model, clock, "a", "sa")
    logged_in(model, clock, "b", "sb")
    clock.now += 5  # past the index's lag after the logins
    model.record(
        "a",
        outcome(clock, "end-others", data={"user": USER}, cookie="sa"),
        failure_allowed=False,
    )
    model.record(
        "b", outcome(clock, "read", data={"user": USER}, cookie="sb"), failure_allowed=False
    )
    assert kinds(model) == ["ended session loaded again"]


def test_a_request_overlapping_end_other_sessions_may_see_either() -> None:
    for seen, loaded in (({"user": USER}, True), ({}, False)):
        model, clock = Model(), Clock()
        logged_in(model, clock, "a", "sa")
        logged_in(model, clock, "b", "sb")
        clock.now += 5
        started, _ = clock.span()
        model.begin("a", "end-others", started)
        model.record(
            "b",
            outcome(clock, "read", data=seen, cookie="sb", loaded=loaded),
            failure_allowed=False,
        )
        assert kinds(model) == []
        # Then the end-others answers, and B's next read finds nothing.
        end = Outcome("end-others", started, clock.now + 1, 200, {"user": USER}, "sa", loaded=True)
        model.record("a", end, failure_allowed=False)
        clock.now += 2
        model.record("b", outcome(clock, "read", data={}, loaded=False), failure_allowed=False)
        assert kinds(model) == []


def test_a_session_found_missing_without_any_cause_is_lost() -> None:
    model, clock = Model(), Clock()
    logged_in(model, clock, "d", "s1")
    model.record("d", outcome(clock, "read", data={}, loaded=False), failure_allowed=False)
    assert kinds(model) == ["session lost"]
