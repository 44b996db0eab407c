"""Polling loops check often around the expected completion, grow after it, and end in a named error at
their bound; the README's table of waits is the code's."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest

from dbx_privatelink.aws import DEFAULT_SECRET_MAX_AGE_S
from dbx_privatelink.errors import EndpointsNotCreatedTimeoutError, WorkspaceNotRunningTimeoutError
from dbx_privatelink.models.base import PollState, ScheduleName, parse_expected_seconds
from dbx_privatelink.reconcile.polling import (
    LOOK_AGAIN_MARGIN_S,
    SCHEDULES,
    PollPolicy,
    PollSchedule,
    check_until_settled,
    look,
    next_poll,
    schedule_for,
)
from dbx_privatelink.wiring import Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_geometric_intervals_grow_then_cap() -> None:
    policy = PollPolicy(first_wait_s=5, max_wait_s=30, max_attempts=10)
    waits = [policy.wait_for(a) for a in range(8)]
    assert waits == sorted(waits) and waits[0] == 5 and waits[-1] == 30


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_change_near_its_expected_time_is_seen_within_the_short_interval(name: str) -> None:
    s = SCHEDULES[name]
    assert s.worst_overshoot_s(max(0, s.expected_s - s.near_s), s.expected_s + s.window_s) <= s.near_s
    # A check falls on the expected time itself, or within the short interval before it.
    assert any(s.expected_s - s.near_s <= o <= s.expected_s for o in s.offsets)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_before_the_expected_time_each_step_halves_what_is_left(name: str) -> None:
    s = SCHEDULES[name]
    early = [(a, b) for a, b in zip(s.offsets, s.offsets[1:], strict=False) if b <= s.expected_s]
    for a, b in early:
        assert b - a <= max(s.near_s, (s.expected_s - a + 1) // 2, 1)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_after_the_window_intervals_grow_to_the_cap_and_stay_there(name: str) -> None:
    s = SCHEDULES[name]
    late = [b - a for a, b in zip(s.offsets, s.offsets[1:], strict=False) if a >= s.expected_s + s.window_s]
    assert late == sorted(late) and late[0] > s.near_s and max(late) == s.max_wait_s
    assert s.worst_overshoot_s(s.expected_s + s.window_s, s.budget_s()) == s.max_wait_s


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_bound_is_kept_and_far_below_the_history_limit(name: str) -> None:
    s = SCHEDULES[name]
    assert s.bound_s <= s.budget_s() < s.bound_s + s.max_wait_s
    # Each iteration costs about ten history events; Standard executions allow 25,000.
    assert s.max_attempts * 10 < 2_500


def test_a_schedule_whose_bound_precedes_its_window_is_refused() -> None:
    with pytest.raises(ValueError, match="bound"):
        PollSchedule(expected_s=60, bound_s=70, window_s=20)


def test_ready_stops_the_loop_and_keeps_its_schedule() -> None:
    state = next_poll(
        PollState(attempt=3, schedule="private_dns"),
        ready=True,
        detail="ok",
        policy=SCHEDULES["private_dns"],
        timeout=EndpointsNotCreatedTimeoutError,
    )
    assert state.ready and state.attempt == 4 and state.schedule == "private_dns"


def test_not_ready_waits_until_the_schedules_next_check() -> None:
    s = SCHEDULES["workspace_created"]
    state = PollState(schedule="workspace_created")
    seen = []
    for _ in range(10):
        state = next_poll(
            state, ready=False, detail="PROVISIONING", policy=s, timeout=WorkspaceNotRunningTimeoutError
        )
        seen.append(state.wait_seconds)
    assert [sum(seen[:i]) for i in range(1, 11)] == list(s.offsets[1:11])


def test_bound_ends_in_the_named_error() -> None:
    s = SCHEDULES["endpoints_created"]
    last = PollState(attempt=s.max_attempts - 1)
    with pytest.raises(EndpointsNotCreatedTimeoutError, match="still pending"):
        next_poll(
            last, ready=False, detail="relay still pending", policy=s, timeout=EndpointsNotCreatedTimeoutError
        )


def test_the_loop_state_names_its_schedule_else_the_check_default_applies() -> None:
    assert (
        schedule_for(PollState(schedule="private_dns"), "registration_available") is SCHEDULES["private_dns"]
    )
    assert schedule_for(PollState(), "registration_available") is SCHEDULES["registration_available"]


def test_an_expected_time_can_be_overridden_per_resource() -> None:
    s = schedule_for(PollState(), "workspace_created", "workspace_created=300, private_dns=20")
    # 1 s: the second look of each short step is kept with the new expected time
    assert s.expected_s == 300 and s.look_again_s == 1 and s.worst_overshoot_s(298, 330) == 1
    assert s.bound_s == SCHEDULES["workspace_created"].bound_s


def test_every_schedule_name_has_a_schedule_and_every_schedule_a_name() -> None:
    # POLL_EXPECTED_SECONDS is checked against the names (at cold start, without the schedules)
    assert set(SCHEDULES) == set(get_args(ScheduleName))


@pytest.mark.parametrize("text", ["workspace=60", "private_dns=ten", "private_dns"])
def test_a_mistyped_override_is_named_with_the_fix(text: str) -> None:
    with pytest.raises(ValueError, match=r"POLL_EXPECTED_SECONDS.*fix or remove it"):
        parse_expected_seconds(text)


def test_a_mistyped_override_fails_at_cold_start() -> None:
    env = {"AWS_REGION": "us-east-1", "OWNER_TAG": "t", "POLL_EXPECTED_SECONDS": "workspace=60"}
    with pytest.raises(ValueError, match="POLL_EXPECTED_SECONDS"):
        Settings.from_env((), env)
    env["POLL_EXPECTED_SECONDS"] = "workspace_created=120"
    assert Settings.from_env((), env).poll_expected_seconds == "workspace_created=120"


def test_the_readme_table_of_waits_is_the_code() -> None:
    # Given the README's table: | `name` | what | expected s | checks by then | overshoot near | later | bound min |
    rows = {
        m[1]: tuple(int(v) for v in m.groups()[1:])
        for m in re.finditer(
            r"^\| `(\w+)` \|[^|]+\| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", README.read_text(), re.M
        )
    }
    # Then every schedule has its row, with the numbers the code computes.
    assert set(rows) == set(SCHEDULES)
    for name, s in SCHEDULES.items():
        near = s.worst_overshoot_s(max(0, s.expected_s - s.near_s), s.expected_s + s.window_s)
        later = s.worst_overshoot_s(s.expected_s + s.window_s, s.budget_s())
        assert rows[name] == (s.expected_s, s.checks_until(s.expected_s), near, later, s.budget_s() // 60), (
            name
        )


class _Deps:
    """What look() uses of Deps: the invocation's time left and a pause it records instead of sleeping."""

    def __init__(self, remaining_s: float = 60.0) -> None:
        self.paused: list[float] = []
        self._remaining_s = remaining_s

    def remaining_time_s(self) -> float:
        return self._remaining_s

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


def _reads(*results: str) -> tuple[list[str], Callable[[], str]]:
    calls: list[str] = []
    found = iter(results)

    def read() -> str:
        calls.append("read")
        return next(found)

    return calls, read


def test_a_second_look_comes_only_inside_the_window_of_short_steps() -> None:
    s = PollSchedule(expected_s=40, bound_s=2230, look_again_s=1)
    for attempt, offset in enumerate(s.offsets[:-1], start=1):
        if s.second_look_s(attempt):
            assert s.offsets[attempt] - offset == s.near_s, offset
            assert s.expected_s - 2 * s.near_s <= offset < s.expected_s + s.window_s, offset
    # From just before the expected time to the window's end the loop looks every second (checks every 2 s,
    # each looking twice); outside, the same checks as without the second look.
    window = [t for t in s.looks if s.expected_s - s.near_s <= t <= s.expected_s + s.window_s]
    assert all(b - a == 1 for a, b in itertools.pairwise(window))
    plain = PollSchedule(expected_s=40, bound_s=2230)
    assert s.offsets == plain.offsets and set(s.looks) - set(s.offsets)
    assert plain.looks == plain.offsets
    with pytest.raises(ValueError, match="second look"):
        PollSchedule(expected_s=40, bound_s=2230, look_again_s=2)


def test_a_check_inside_the_window_looks_again_and_waits_the_less() -> None:
    s = PollSchedule(expected_s=40, bound_s=2230, look_again_s=1)
    attempt = next(a for a in range(1, s.max_attempts) if s.second_look_s(a))
    previous = PollState(attempt=attempt - 1)
    # Still waiting at the first look, there at the second: one invocation sees it.
    deps = _Deps()
    calls, read = _reads("relay is pendingAcceptance", "")
    found, looked = look(previous, s, read, deps)  # type: ignore[arg-type]
    assert (found, looked, deps.paused, len(calls)) == ("", 1, [1], 2)
    # Still waiting at both: the next check comes after the rest of the short step.
    reads: list[str] = []

    def still_pending() -> list[str]:
        reads.append("read")
        return ["relay is pending"]

    state = check_until_settled(
        previous,
        still_pending,
        settled="every endpoint has left pending",
        policy=s,
        timeout=EndpointsNotCreatedTimeoutError,
        deps=_Deps(),  # type: ignore[arg-type]
    )
    assert not state.ready and state.detail == "relay is pending" and len(reads) == 2
    assert state.wait_seconds == s.wait_for(attempt) - 1 == 1


def test_no_second_look_when_ready_outside_the_window_or_short_of_time() -> None:
    s = PollSchedule(expected_s=40, bound_s=2230, look_again_s=1)
    inside = next(a for a in range(1, s.max_attempts) if s.second_look_s(a))
    early = next(a for a in range(1, s.max_attempts) if not s.second_look_s(a))
    for attempt, remaining, first in (
        (inside, 60.0, ""),  # nothing to wait for
        (early, 60.0, "pending"),  # long before the expected time
        (inside, LOOK_AGAIN_MARGIN_S, "pending"),  # the invocation would run out of time
    ):
        deps = _Deps(remaining)
        calls, read = _reads(first, "")
        assert look(PollState(attempt=attempt - 1), s, read, deps) == (first, 0)  # type: ignore[arg-type]
        assert deps.paused == [] and len(calls) == 1
    # A plain policy never looks twice.
    calls, read = _reads("pending", "")
    policy = PollPolicy(first_wait_s=5, max_wait_s=30, max_attempts=10)
    assert look(PollState(), policy, read, _Deps()) == ("pending", 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("var", "raw", "want"),
    [
        ("MAX_REMEDIATIONS_PER_HOUR", "three", "a whole number at least 0"),
        ("MAX_REMEDIATIONS_PER_HOUR", "-1", "a whole number at least 0"),
        ("RESOLVER_REQUESTS_PER_SECOND", "0", "a number above 0"),
        ("DBX_PRIVATELINK_TIME_SCALE", "fast", "a number above 0"),
        ("DBX_PRIVATELINK_TIME_SCALE", "nan", "a number above 0"),
        ("RESOLVER_REQUESTS_PER_SECOND", "inf", "a number above 0"),
        ("RESOLVER_ENDPOINTS_QUOTA", "4.5", "a whole number above 0"),
        ("POWERTOOLS_PARAMETERS_MAX_AGE", "-5", "a whole number above 0"),
    ],
)
def test_a_number_setting_that_is_not_one_is_named_at_cold_start(var: str, raw: str, want: str) -> None:
    env = {"AWS_REGION": "us-east-1", "OWNER_TAG": "t", var: raw}
    with pytest.raises(SettingsError, match=rf"{var}={raw!r} must be {want}: set it so in template.yaml"):
        Settings.from_env((), env)
    env[var] = "2"
    Settings.from_env((), env)


def test_a_number_setting_left_empty_takes_its_default() -> None:
    env = {"AWS_REGION": "us-east-1", "OWNER_TAG": "t", "POWERTOOLS_PARAMETERS_MAX_AGE": ""}
    assert Settings.from_env((), env).secret_max_age_s == DEFAULT_SECRET_MAX_AGE_S
