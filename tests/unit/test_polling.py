"""Polling loops grow their intervals and end in a named error at their bound."""

from __future__ import annotations

import pytest

from dbx_privatelink.errors import EndpointsNotCreatedTimeoutError
from dbx_privatelink.models import PollState
from dbx_privatelink.reconcile.polling import ENDPOINTS_CREATED, PollPolicy, next_poll


def test_intervals_grow_then_cap() -> None:
    policy = PollPolicy(first_wait_s=5, max_wait_s=30, max_attempts=10)
    waits = [policy.wait_for(a) for a in range(8)]
    assert waits == sorted(waits) and waits[0] == 5 and waits[-1] == 30


def test_ready_stops_the_loop() -> None:
    state = next_poll(
        PollState(attempt=3),
        ready=True,
        detail="ok",
        policy=ENDPOINTS_CREATED,
        timeout=EndpointsNotCreatedTimeoutError,
    )
    assert state.ready and state.attempt == 4


def test_not_ready_schedules_the_next_check() -> None:
    state = next_poll(
        PollState(),
        ready=False,
        detail="pending",
        policy=ENDPOINTS_CREATED,
        timeout=EndpointsNotCreatedTimeoutError,
    )
    assert not state.ready and state.wait_seconds == ENDPOINTS_CREATED.wait_for(1)


def test_bound_ends_in_the_named_error() -> None:
    last = PollState(attempt=ENDPOINTS_CREATED.max_attempts - 1)
    with pytest.raises(EndpointsNotCreatedTimeoutError, match="still pending"):
        next_poll(
            last,
            ready=False,
            detail="relay still pending",
            policy=ENDPOINTS_CREATED,
            timeout=EndpointsNotCreatedTimeoutError,
        )


def test_a_bounded_loop_stays_far_below_the_history_limit() -> None:
    # Each iteration costs about ten history events; Standard executions allow 25,000.
    assert ENDPOINTS_CREATED.max_attempts * 10 < 2_500
