"""Fault injection: make chosen requests fail the way a real service and network do, a bounded number of
times, so client retry paths can be tested and every loop ends."""

from __future__ import annotations

import fnmatch
import itertools
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

FaultKind = Literal["throttle", "unavailable", "error", "latency", "commit_then_drop", "commit_then_error"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
# Faults that let the backend perform the write before the client sees a failure.
COMMIT_FIRST = ("commit_then_drop", "commit_then_error")


@dataclass
class Fault:
    """One rule: requests whose method and path match fail `count` times, then the rule is spent.

    kind: throttle (429 REQUEST_LIMIT_EXCEEDED + Retry-After), unavailable (503 TEMPORARILY_UNAVAILABLE
    + Retry-After), error (`status` before any write), latency (`latency_s` emulated seconds, then
    normal handling), commit_then_drop (the write happens, then the socket closes without a response),
    commit_then_error (the write happens, then `status` comes back).
    path: a glob on the request path (fnmatch, `*` crosses `/`), or a regular expression with regex=True.
    """

    kind: FaultKind
    method: str = "*"
    path: str = "*"
    regex: bool = False
    count: int = 1
    retry_after_s: int = 1
    latency_s: float = 1.0
    status: int | None = None
    fault_id: str = ""
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer: faults must run out")
        if not isinstance(self.retry_after_s, int) or self.retry_after_s < 0:
            raise ValueError("retry_after_s must be a non-negative integer (Retry-After is integer seconds)")
        if self.latency_s < 0:
            raise ValueError("latency_s must not be negative")
        if self.status is not None and not 500 <= self.status <= 599 and self.kind in COMMIT_FIRST:
            raise ValueError("commit_then_error needs a 5xx status")
        self.method = self.method.upper()
        self._pattern = re.compile(self.path) if self.regex else None

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self._pattern is not None:
            return self._pattern.search(path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    @property
    def remaining(self) -> int:
        return self.count - self.fired

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_pattern")
        out["remaining"] = self.remaining
        return out


class FaultInjector:
    """Holds fault rules; `take` consumes one firing of the first live rule that matches a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            if not fault.fault_id:
                fault.fault_id = f"fault-{next(self._ids)}"
            self._faults.append(fault)
        return fault

    def add_from_json(self, body: dict[str, Any]) -> Fault:
        allowed = {
            "kind",
            "method",
            "path",
            "regex",
            "count",
            "retry_after_s",
            "latency_s",
            "status",
            "fault_id",
        }
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in body:
            raise ValueError("a fault needs a kind")
        return self.add(Fault(**body))

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.fault_id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
