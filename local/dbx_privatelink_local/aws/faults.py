"""Error injection for calls to the emulated AWS, answered in each service's real error shape.

    aws.faults.add(service="ec2", action="CreateVpcEndpoint", code="RequestLimitExceeded", status=503, times=2)

makes the next two CreateVpcEndpoint calls fail the way EC2 fails (Query-API XML <Response><Errors>...),
and leaves every other call alone. JSON services answer {"__type": code, "message": ...}, REST-XML
services (Route 53) <ErrorResponse><Error>..., so the application's error mapping is what gets tested.
The rate limits (aws/rate_limits.py) answer in the same shapes through render_error.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dbx_privatelink_local.aws.calls import AwsCall


@dataclass
class Fault:
    """One injected error: which calls it hits and how often."""

    service: str
    action: str  # "*" hits every operation of the service
    code: str
    status: int
    message: str
    remaining: int
    region: str | None = None

    def hits(self, call: AwsCall) -> bool:
        if self.remaining <= 0 or call.service != self.service:
            return False
        if self.region is not None and call.region != self.region:
            return False
        return self.action == "*" or self.action == call.action


@dataclass(frozen=True)
class ErrorResponse:
    """A rendered error: status line, headers and body, ready for WSGI."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Error"
        return f"{self.status} {reason}"


def render_error(call: AwsCall, code: str, message: str, status: int) -> ErrorResponse:
    """The error as the call's service would send it (by wire protocol)."""
    request_id = str(uuid.uuid4())
    protocol = call.protocol
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return ErrorResponse(status, [("Content-Type", "text/xml;charset=UTF-8")], body.encode())
    if protocol in ("query", "rest-xml"):
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return ErrorResponse(
            status,
            [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
            body.encode(),
        )
    content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    payload = {"__type": code, "message": message}
    return ErrorResponse(
        status,
        [("Content-Type", content_type), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)],
        json.dumps(payload).encode(),
    )


class FaultInjector:
    """The injected errors of one local stack; thread-safe, every fault bounded by its count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        service: str,
        action: str,
        code: str,
        status: int = 400,
        times: int = 1,
        message: str | None = None,
        region: str | None = None,
    ) -> Fault:
        """Fail the next `times` calls of `service`/`action` (action "*" = any) with `code` and `status`."""
        if times < 1:
            raise ValueError("times must be at least 1: a fault is always bounded")
        fault = Fault(
            service=service,
            action=action,
            code=code,
            status=status,
            message=message or f"Injected fault: {code}",
            remaining=times,
            region=region,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, call: AwsCall) -> Fault | None:
        """The first fault that hits this call, its count consumed; None when the call goes through."""
        with self._lock:
            for fault in self._faults:
                if fault.hits(call):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    def pending(self) -> list[Fault]:
        """Faults that still have calls to fail."""
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def clear(self) -> None:
        """Forget every fault."""
        with self._lock:
            self._faults.clear()
