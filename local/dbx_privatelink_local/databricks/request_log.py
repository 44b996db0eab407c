"""Every API request the emulator answered, counted by operation for benchmarks and assertions."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

DROPPED = 0  # the status recorded when the connection was closed without a response


@dataclass(frozen=True)
class CallRecord:
    method: str
    template: str  # the route, e.g. /api/2.0/accounts/{account_id}/vpc-endpoints/{vpc_endpoint_id}
    path: str
    status: int
    fault: str | None
    at: float
    user_agent: str = ""  # dbx-privatelink's client names its step there: "dbx-privatelink/0.1.0 step/<name>"

    @property
    def operation(self) -> str:
        return f"{self.method} {self.template}"


class RequestLog:
    def __init__(self, max_entries: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[CallRecord] = deque(maxlen=max_entries)
        self._by_operation: Counter[str] = Counter()
        self._by_status: Counter[tuple[str, int]] = Counter()
        self._by_agent: Counter[tuple[str, str]] = Counter()

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self._entries.append(call)
            self._by_operation[call.operation] += 1
            self._by_status[(call.operation, call.status)] += 1
            self._by_agent[(call.operation, call.user_agent)] += 1

    def entries(self) -> list[CallRecord]:
        with self._lock:
            return list(self._entries)

    def by_operation(self) -> dict[str, int]:
        """{"POST /api/2.0/accounts/{account_id}/vpc-endpoints": 3, ...}"""
        with self._lock:
            return dict(self._by_operation)

    def by_operation_and_agent(self) -> dict[tuple[str, str], int]:
        """{("DELETE /api/2.0/accounts/{account_id}/networks/{network_id}", "dbx-privatelink/0.1.0 step/
        scan_orphans"): 1, ...}: who made the calls, for tests that must leave out a sweep running beside them."""
        with self._lock:
            return dict(self._by_agent)

    def by_operation_and_status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"operation": op, "status": status, "count": n}
                for (op, status), n in sorted(self._by_status.items())
            ]

    def count(self, method: str, template: str, status: int | None = None) -> int:
        with self._lock:
            op = f"{method.upper()} {template}"
            if status is None:
                return self._by_operation.get(op, 0)
            return self._by_status.get((op, status), 0)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_operation.clear()
            self._by_status.clear()
            self._by_agent.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "by_operation": self.by_operation(),
            "by_operation_and_status": self.by_operation_and_status(),
            "calls": [asdict(c) for c in self.entries()],
        }
