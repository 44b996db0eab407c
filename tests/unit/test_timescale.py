"""The local stack's emulated delays run in the order they fall due, however late a loaded machine runs them:
a change due earlier (an endpoint back to `available`) is never applied after one due later (the workspace's
network validation), which separate timer threads could not promise."""

from __future__ import annotations

import threading

from dbx_privatelink_local.timescale import TimeScale

# Long enough for a timer due 10 ms later to run if anything lets it; a wait, not a sleep: the test never
# waits this long when the order is kept (the later action cannot run while the earlier one holds the line).
HELD_FOR_S = 0.5
DONE_WITHIN_S = 10.0


def test_an_action_due_later_waits_for_one_due_earlier_that_is_held_up() -> None:
    scale = TimeScale(1.0)
    order: list[str] = []
    later_ran = threading.Event()
    both_done = threading.Event()
    seen_by_earlier: list[bool] = []

    def earlier() -> None:
        # Held up (as by a lock a loaded process holds): does the later action get in meanwhile?
        seen_by_earlier.append(later_ran.wait(HELD_FOR_S))
        order.append("earlier")

    def later() -> None:
        order.append("later")
        later_ran.set()
        both_done.set()

    scale.timer(0.01, earlier)
    scale.timer(0.02, later)
    assert both_done.wait(DONE_WITHIN_S)
    assert order == ["earlier", "later"]
    assert seen_by_earlier == [False]


def test_timers_run_by_due_time_not_by_the_order_they_were_set_and_ties_keep_that_order() -> None:
    scale = TimeScale(1.0)
    order: list[str] = []
    done = threading.Event()
    gate = threading.Event()
    # The first action holds the line until every other timer is set, so all of them are due when it lets go.
    scale.timer(0, lambda: gate.wait(DONE_WITHIN_S))
    scale.timer(0.03, lambda: (order.append("c"), done.set()))
    scale.timer(0.01, lambda: order.append("a"))
    scale.timer(0.02, lambda: order.append("b1"))
    scale.timer(0.02, lambda: order.append("b2"))
    gate.set()
    assert done.wait(DONE_WITHIN_S)
    assert order == ["a", "b1", "b2", "c"]


def test_a_cancelled_timer_does_not_run_and_a_failing_action_does_not_stop_the_next() -> None:
    scale = TimeScale(1.0)
    ran: list[str] = []
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("emulated failure")

    cancelled = scale.timer(0.01, lambda: ran.append("cancelled"))
    cancelled.cancel()
    scale.timer(0.01, fails)
    scale.timer(0.02, lambda: (ran.append("next"), done.set()))
    assert done.wait(DONE_WITHIN_S)
    assert ran == ["next"]


def test_the_delay_is_scaled_an_action_set_from_an_action_runs_and_zero_runs_at_once() -> None:
    scale = TimeScale(0.001)  # 10 emulated seconds last 10 ms
    done = threading.Event()
    ran: list[str] = []
    scale.timer(10, lambda: (ran.append("first"), scale.timer(0, lambda: (ran.append("second"), done.set()))))
    assert done.wait(DONE_WITHIN_S)
    assert ran == ["first", "second"]
