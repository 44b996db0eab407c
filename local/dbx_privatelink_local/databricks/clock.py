"""Time for the emulator: a wall clock and a scheduler scaled by the shared TimeScale, or a manual one.

Emulated delays (an endpoint accepted after 20 s, a workspace running after a minute) go through a
Scheduler so the local stack can compress them with TIME_SCALE and unit tests can step them with
ManualClock.advance() instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

from dbx_privatelink_local.timescale import TIME_SCALE, TimeScale

Action = Callable[[], None]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class Scheduler(Protocol):
    def call_later(self, seconds: float, action: Action) -> Cancellable:
        """Run `action` once after `seconds` of emulated time."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()


class TimeScaleScheduler:
    """Daemon timers whose delays are multiplied by the shared time factor."""

    def __init__(self, scale: TimeScale = TIME_SCALE) -> None:
        self._scale = scale

    def call_later(self, seconds: float, action: Action) -> Cancellable:
        return self._scale.timer(seconds, action)


class _ManualTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock and scheduler that only move when told to: deterministic tests without sleeps."""

    # An action that reschedules itself for "now" forever would otherwise spin advance() endlessly.
    MAX_ACTIONS_PER_ADVANCE = 10_000

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._seq = itertools.count()
        self._queue: list[tuple[float, int, _ManualTimer, Action]] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def call_later(self, seconds: float, action: Action) -> Cancellable:
        timer = _ManualTimer()
        with self._lock:
            heapq.heappush(self._queue, (self._now + max(0.0, seconds), next(self._seq), timer, action))
        return timer

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(1 for _, _, t, _ in self._queue if not t.cancelled)

    def advance(self, seconds: float) -> int:
        """Move time forward, running every action that falls due, in order; returns how many ran."""
        with self._lock:
            target = self._now + max(0.0, seconds)
        ran = 0
        for _ in range(self.MAX_ACTIONS_PER_ADVANCE):
            with self._lock:
                if not self._queue or self._queue[0][0] > target:
                    self._now = target
                    return ran
                due, _, timer, action = heapq.heappop(self._queue)
                self._now = max(self._now, due)
            if not timer.cancelled:
                action()
                ran += 1
        raise RuntimeError("ManualClock.advance ran too many actions: an action keeps rescheduling itself")
