"""The counter of a Wait -> Check -> Choice loop: when to check next, and the upper bound.

A reconcile loop waits for one known change (an endpoint accepted, a workspace provisioned), so it follows a
`PollSchedule`: long steps while the change cannot have landed yet, each half the time left to its expected
completion; short steps (`near_s`) from just before the expected time to `window_s` after it; then growth
by `growth` per check, capped at `max_wait_s`, until the bound (`budget_s` seconds of waiting) ends the loop
with its named timeout error. With `look_again_s`, a check inside the short-step window that finds the
change not there yet looks once more that many seconds later, in the same invocation, before it hands back
to the Wait state: the change is seen sooner at the cost of a read, not of an invocation. The
decommission's loops wait for things with no known duration (another execution's lease, a delete refused as
in use) and keep a plain `PollPolicy`: growth, cap, bound.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

from dbx_privatelink.models.base import PollState, ScheduleName, parse_expected_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

    from dbx_privatelink.errors import PollTimeoutError
    from dbx_privatelink.wiring import Deps

# A second look is taken only when the invocation has this much time left after it.
LOOK_AGAIN_MARGIN_S = 10.0


class PollBound(Protocol):
    @property
    def max_attempts(self) -> int: ...

    def wait_for(self, attempt: int) -> int: ...

    def budget_s(self) -> int: ...


class PollPolicy(NamedTuple):
    """Growing intervals for a wait of no known duration."""

    first_wait_s: int
    max_wait_s: int
    max_attempts: int
    growth: float = 1.5

    def wait_for(self, attempt: int) -> int:
        """Seconds to wait before check number `attempt` + 1 (grows, then caps)."""
        return min(self.max_wait_s, math.ceil(self.first_wait_s * self.growth**attempt))

    def budget_s(self) -> int:
        """The longest a loop can wait before its upper bound ends it."""
        return sum(self.wait_for(a) for a in range(self.max_attempts))


class PollSchedule:
    """When to check for a change expected `expected_s` seconds after the loop's first check. (A plain class:
    a dataclass would compile its methods at every cold start of each function that polls.)"""

    def __init__(
        self,
        expected_s: int,
        bound_s: int,
        *,
        near_s: int = 2,
        window_s: int = 20,
        max_wait_s: int = 15,
        growth: float = 1.5,
        look_again_s: int = 0,  # inside the window: a second look this many seconds after a check's first
    ) -> None:
        self.expected_s: Final = expected_s
        self.bound_s: Final = bound_s
        self.near_s: Final = near_s
        self.window_s: Final = window_s
        self.max_wait_s: Final = max_wait_s
        self.growth: Final = growth
        self.look_again_s: Final = look_again_s
        if self.expected_s < 0 or self.near_s < 1 or self.max_wait_s < self.near_s:
            raise ValueError(f"a poll schedule needs expected_s >= 0 and 1 <= near_s <= max_wait_s: {self}")
        if not 0 <= self.look_again_s < self.near_s:
            raise ValueError(f"a poll schedule's second look must come before its next check: {self}")
        if self.bound_s <= self.expected_s + self.window_s:
            raise ValueError(f"a poll schedule's bound must lie past its expected time and window: {self}")

    def __repr__(self) -> str:
        return (
            f"PollSchedule(expected_s={self.expected_s}, bound_s={self.bound_s}, near_s={self.near_s}, "
            f"window_s={self.window_s}, max_wait_s={self.max_wait_s}, growth={self.growth}, "
            f"look_again_s={self.look_again_s})"
        )

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Seconds after the first check at which each check runs (the first at 0), up to the bound."""
        e, done, late = self.expected_s, [0], 0
        while done[-1] < self.bound_s:
            t = done[-1]
            if t + self.near_s < e:
                # Halve the time left, so an early change is not seen late, and land just before e.
                wait = min(self.max_wait_s, max(self.near_s, (e - self.near_s - t + 1) // 2))
            elif t < e + self.window_s:
                wait = self.near_s
            else:
                late += 1
                wait = min(self.max_wait_s, math.ceil(self.near_s * self.growth**late))
            done.append(t + wait)
        return tuple(done)

    @property
    def max_attempts(self) -> int:
        return len(self.offsets)

    def second_look_s(self, attempt: int) -> int:
        """Seconds after its first look that check number `attempt` (1-based) looks again; 0: it does not."""
        if not self.look_again_s or not 0 < attempt < self.max_attempts:
            return 0
        # A short step whose next check falls near the expected time or after it, up to the window's end.
        t, following = self.offsets[attempt - 1], self.offsets[attempt]
        near = following - t == self.near_s and following >= self.expected_s - self.near_s
        return self.look_again_s if near and t < self.expected_s + self.window_s else 0

    @cached_property
    def looks(self) -> tuple[int, ...]:
        """Seconds after the first check at which the loop looks: each check, and the second looks."""
        again = (
            o + self.second_look_s(a) for a, o in enumerate(self.offsets, start=1) if self.second_look_s(a)
        )
        return tuple(sorted({*self.offsets, *again}))

    def wait_for(self, attempt: int) -> int:
        """Seconds to wait after check number `attempt` (1-based) before the next one."""
        return self.offsets[attempt] - self.offsets[attempt - 1]

    def budget_s(self) -> int:
        return self.offsets[-1]

    def worst_overshoot_s(self, start: int, end: int) -> int:
        """The longest a change landing between `start` and `end` seconds can stay unseen."""
        pairs = zip(self.looks, self.looks[1:], strict=False)
        return max((b - a for a, b in pairs if b > start and a < end), default=0)

    def checks_until(self, t: int) -> int:
        """How many checks run up to `t` seconds (the first one included)."""
        return sum(1 for o in self.offsets if o <= t)


# Expected times. Endpoints and the workspace: the local stack's emulated delays, which follow what AWS and
# Databricks were seen to take (neither publishes them): an endpoint leaves pending in seconds; Databricks
# accepts a registered endpoint after about 20 s and AWS reports it available about 20 s later; private DNS
# about 10 s; an AWS-service interface endpoint about a minute; a workspace RUNNING about a minute after its
# create, 30 s after a PATCH. Resolver and Route 53 (the local stack completes them at once): estimates;
# Route 53 says its changes reach all its name servers within 60 s. Override them per deployment with
# POLL_EXPECTED_SECONDS ("workspace_created=300,registration_available=90"). The bounds are those the loops
# have always had.
SCHEDULES: dict[str, PollSchedule] = {
    # The waits on the workspace's critical path look again 1 s into each short step (the others hold up
    # nothing: the AWS-service endpoints, Resolver and Route 53 run beside the workspace).
    "endpoints_created": PollSchedule(expected_s=2, bound_s=1180, look_again_s=1),  # ~20 min
    "registration_available": PollSchedule(expected_s=40, bound_s=2230, look_again_s=1),  # ~37 min
    "private_dns": PollSchedule(expected_s=10, bound_s=2230),
    "aws_endpoints_available": PollSchedule(expected_s=60, bound_s=2230),
    "workspace_created": PollSchedule(
        expected_s=60, window_s=30, max_wait_s=20, bound_s=2585, look_again_s=1
    ),  # ~43 min
    "workspace_updated": PollSchedule(
        expected_s=30, window_s=30, max_wait_s=20, bound_s=2585, look_again_s=1
    ),
    "resolver_endpoints": PollSchedule(expected_s=60, window_s=30, max_wait_s=30, bound_s=1118),  # ~19 min
    "rule_associations": PollSchedule(expected_s=30, window_s=30, max_wait_s=30, bound_s=1118),
    "zone_associations": PollSchedule(expected_s=45, window_s=30, max_wait_s=30, bound_s=858),  # ~14 min
}


def schedule_for(poll: PollState, default: ScheduleName, expected_seconds: str = "") -> PollSchedule:
    """The schedule the loop's state names (the state machine sets it), else `default`, with overrides."""
    name = poll.schedule or default
    schedule = SCHEDULES[name]
    expected = parse_expected_seconds(expected_seconds).get(name)
    if expected is None or expected == schedule.expected_s:
        return schedule
    budget = max(schedule.bound_s, expected + schedule.window_s + schedule.max_wait_s)
    return PollSchedule(
        expected_s=expected,
        bound_s=budget,
        near_s=schedule.near_s,
        window_s=schedule.window_s,
        max_wait_s=schedule.max_wait_s,
        growth=schedule.growth,
        look_again_s=schedule.look_again_s,
    )


def look[T](previous: PollState, policy: PollBound, read: Callable[[], T], deps: Deps) -> tuple[T, int]:
    """What `read` finds (falsy: nothing left to wait for), and the seconds this check spent waiting for
    its second look: inside the schedule's window a check that still waits reads again `look_again_s`
    later, when the invocation has the time."""
    found = read()
    pause = policy.second_look_s(previous.attempt + 1) if isinstance(policy, PollSchedule) else 0
    if not found or not pause or deps.remaining_time_s() < pause + LOOK_AGAIN_MARGIN_S:
        return found, 0
    deps.pause(pause)
    return read(), pause


def check_until_settled(
    previous: PollState,
    read: Callable[[], list[str]],
    *,
    settled: str,
    policy: PollBound,
    timeout: type[PollTimeoutError],
    deps: Deps,
) -> PollState:
    """poll_until_settled for a check that reads what it still waits for with `read`: inside the schedule's
    window it looks twice (look)."""
    waiting, looked = look(previous, policy, read, deps)
    return poll_until_settled(
        previous, waiting, settled=settled, policy=policy, timeout=timeout, looked_s=looked
    )


def next_poll(
    previous: PollState,
    *,
    ready: bool,
    detail: str,
    policy: PollBound,
    timeout: type[PollTimeoutError],
    looked_s: int = 0,
) -> PollState:
    """The loop's next state; past the policy's bound a not-ready check raises `timeout`. `looked_s`: the
    seconds the check already waited for its second look, taken off the next wait."""
    attempt = previous.attempt + 1
    if ready:
        return PollState(
            attempt=attempt, wait_seconds=0, ready=True, detail=detail, schedule=previous.schedule
        )
    if attempt >= policy.max_attempts:
        raise timeout(
            f"gave up after {attempt} checks over about {policy.budget_s() // 60} minutes: {detail}"
        )
    return PollState(
        attempt=attempt,
        wait_seconds=max(1, policy.wait_for(attempt) - looked_s),
        ready=False,
        detail=detail,
        schedule=previous.schedule,
    )


def poll_until_settled(
    previous: PollState,
    waiting: list[str],
    *,
    settled: str,
    policy: PollBound,
    timeout: type[PollTimeoutError],
    looked_s: int = 0,
) -> PollState:
    """next_poll for a check that lists what it still waits for: ready when the list is empty."""
    return next_poll(
        previous,
        ready=not waiting,
        detail="; ".join(waiting) or settled,
        policy=policy,
        timeout=timeout,
        looked_s=looked_s,
    )
