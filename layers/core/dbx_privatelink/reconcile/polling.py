"""The counter of a Wait -> Check -> Choice loop: growing intervals and an upper bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dbx_privatelink.errors import PollTimeoutError
from dbx_privatelink.models import PollState


@dataclass(frozen=True)
class PollPolicy:
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


# Capped low: a state seen late holds up everything after it (a fleet behind one queue finishes with its
# last workspace's tail), and a poll is one cheap read. The bounds keep the old budgets.
ENDPOINTS_CREATED = PollPolicy(first_wait_s=5, max_wait_s=15, max_attempts=80)  # ~20 min
ENDPOINTS_AVAILABLE = PollPolicy(first_wait_s=5, max_wait_s=15, max_attempts=150)  # ~37 min
WORKSPACE_RUNNING = PollPolicy(first_wait_s=10, max_wait_s=20, max_attempts=130)  # ~43 min
RESOLVER_OPERATIONAL = PollPolicy(first_wait_s=5, max_wait_s=30, max_attempts=40)
ZONE_CHANGE_INSYNC = PollPolicy(first_wait_s=10, max_wait_s=30, max_attempts=30)  # Route 53: ~60 s


def next_poll(
    previous: PollState,
    *,
    ready: bool,
    detail: str,
    policy: PollPolicy,
    timeout: type[PollTimeoutError],
) -> PollState:
    """The loop's next state; past the policy's bound a not-ready check raises `timeout`."""
    attempt = previous.attempt + 1
    if ready:
        return PollState(attempt=attempt, wait_seconds=0, ready=True, detail=detail)
    if attempt >= policy.max_attempts:
        raise timeout(
            f"gave up after {attempt} checks over about {policy.budget_s() // 60} minutes: {detail}"
        )
    return PollState(attempt=attempt, wait_seconds=policy.wait_for(attempt), ready=False, detail=detail)


def poll_until_settled(
    previous: PollState,
    waiting: list[str],
    *,
    settled: str,
    policy: PollPolicy,
    timeout: type[PollTimeoutError],
) -> PollState:
    """next_poll for a check that lists what it still waits for: ready when the list is empty."""
    return next_poll(
        previous, ready=not waiting, detail="; ".join(waiting) or settled, policy=policy, timeout=timeout
    )
