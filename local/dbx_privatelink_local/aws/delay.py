"""A delay queue on one daemon thread: run callables after an emulated delay, pause, resume or flush them.

CloudTrail events and EventBridge retries both wait in one of these, so a test can make time pass (flush)
instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dbx_privatelink_local.timescale import TimeScale

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    label: str = field(compare=False, default="")


class DelayQueue:
    """Runs each submitted action once, `delay` emulated seconds after submission, in submission order
    among equal due times. Pausing holds every action back; flushing runs every waiting action now."""

    def __init__(self, name: str, time_scale: TimeScale) -> None:
        self._name = name
        self._time = time_scale
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._running = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name=f"delay-{self._name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; waiting actions are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def submit(self, delay: float, action: Callable[[], None], label: str = "") -> None:
        """Run `action` after `delay` seconds of emulated time."""
        due = time.monotonic() + self._time.scaled(delay)
        with self._cond:
            heapq.heappush(self._heap, _Item(due, next(self._seq), action, label))
            self._cond.notify_all()

    def pause(self) -> None:
        """Hold every action back until resume() or flush()."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Let due actions run again."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    def pending(self) -> list[str]:
        """Labels of the actions still waiting, earliest first."""
        with self._cond:
            return [item.label for item in sorted(self._heap)]

    def clear(self) -> int:
        """Drop every waiting action; returns how many were dropped."""
        with self._cond:
            dropped = len(self._heap)
            self._heap.clear()
            return dropped

    def flush(self) -> int:
        """Run every waiting action now, in due order, on the caller's thread; returns how many ran."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap:
                    return ran
                item = heapq.heappop(self._heap)
                self._running += 1
            try:
                self._execute(item)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
            ran += 1

    def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) until nothing waits or runs; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def _execute(self, item: _Item) -> None:
        try:
            item.action()
        except Exception:
            # One broken action must not kill the worker that serves every other one.
            log.exception("delayed action %s failed", item.label or item.action)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    if self._heap and not self._paused and self._heap[0].due <= now:
                        item = heapq.heappop(self._heap)
                        self._running += 1
                        break
                    wait = 0.5
                    if self._heap and not self._paused:
                        wait = min(wait, self._heap[0].due - now)
                    self._cond.wait(max(wait, 0.001))
            try:
                self._execute(item)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
