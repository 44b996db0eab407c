"""One time factor for the whole local stack.

The ASL keeps production timings (a 30-second Wait, a Retry with 5-second intervals) and the emulated
services keep realistic delays (an endpoint accepted after 20 s); the local stack multiplies every such
duration by one factor, so a demo that takes minutes on AWS runs in seconds here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class TimeScale:
    """A settable factor: 1.0 is real time, 0.01 makes 100 seconds last one."""

    def __init__(self, factor: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._factor = factor
        self._timeline = _Timeline()

    @property
    def factor(self) -> float:
        with self._lock:
            return self._factor

    @factor.setter
    def factor(self, value: float) -> None:
        if not 0 <= value <= 1000:
            raise ValueError(f"time scale must be between 0 and 1000, got {value}")
        with self._lock:
            self._factor = value

    def scaled(self, seconds: float) -> float:
        """How long `seconds` of emulated time last on the wall clock."""
        return max(0.0, seconds) * self.factor

    def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` of emulated time."""
        wall = self.scaled(seconds)
        if wall > 0:
            time.sleep(wall)

    def timer(self, seconds: float, action: Callable[[], object]) -> Timer:
        """Run `action` once after `seconds` of emulated time. Every timer of this scale runs on one thread in
        the order they fall due, so a change due earlier is never seen after one due later, however late a
        loaded machine runs them (an endpoint back to `available` before the workspace's validation)."""
        return self._timeline.call_at(time.monotonic() + self.scaled(seconds), action)


class Timer:
    """One pending action of a timeline; `cancel` keeps it from running if it has not run yet."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Timeline:
    """Actions by due time (ties in the order they were set), run one at a time on a daemon thread started
    with the first."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._queue: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, due: float, action: Callable[[], object]) -> Timer:
        timer = Timer(action)
        with self._ready:
            heapq.heappush(self._queue, (due, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emulated-timeline", daemon=True)
                self._thread.start()
            self._ready.notify()
        return timer

    def _next_due(self) -> Timer:
        with self._ready:
            while True:
                if not self._queue:
                    self._ready.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._queue)[2]
                self._ready.wait(wait)

    def _run(self) -> None:
        while True:
            timer = self._next_due()
            if timer.cancelled:
                continue
            try:
                timer.action()
            except Exception:  # the timeline has no caller to report to, and must run the next action
                log.exception("emulated delayed action failed")


# The process-wide factor: the local stack sets it once at start-up.
TIME_SCALE = TimeScale()


class Transitions:
    """The pending timed state changes of an emulated service: each runs once after its delay under the
    service's lock, and when it changed something the listeners are told (outside the lock)."""

    def __init__(self, time_scale: TimeScale, lock: threading.Lock | threading.RLock) -> None:
        self._time = time_scale
        self._lock = lock
        self._timers: set[Timer] = set()
        # Told when a state moves on by itself (a timer, not a call): what a resolver answers may change.
        self.listeners: list[Callable[[], None]] = []

    def later(self, seconds: float, step: Callable[[], bool]) -> None:
        """Run `step` after `seconds` of emulated time; it returns whether it changed anything."""

        def run() -> None:
            with self._lock:
                self._timers.discard(timer)
                moved = step()
            for listener in list(self.listeners) if moved else []:
                listener()

        with self._lock:
            timer = self._time.timer(seconds, run)
            self._timers.add(timer)

    def cancel(self) -> None:
        """Cancel every pending change."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
