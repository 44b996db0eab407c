"""The WSGI middleware in front of moto's server: injected faults and the rate limits answer before moto sees
a call (a refused call changes nothing, as on AWS); successful mutating calls to the CloudTrail services are
recorded after it answered."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from dbx_privatelink_local.aws.calls import AwsCall, buffer_body, caller_account, parse_call
from dbx_privatelink_local.aws.cloudtrail import TRAIL_SERVICES, CloudTrailEmitter, is_mutating
from dbx_privatelink_local.aws.faults import ErrorResponse, FaultInjector, render_error
from dbx_privatelink_local.aws.rate_limits import AwsRateLimits

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LocalAwsMiddleware:
    """Wraps moto's DomainDispatcherApplication."""

    def __init__(
        self,
        app: WsgiApp,
        faults: FaultInjector,
        rate_limits: AwsRateLimits,
        cloudtrail: CloudTrailEmitter,
    ) -> None:
        self.app = app
        self.faults = faults
        self.rate_limits = rate_limits
        self.cloudtrail = cloudtrail
        # Told of every successful mutating EC2, Route 53 and Route 53 Resolver call before its caller gets
        # the answer (the local resolvers forget their cached state: an answered change is in effect).
        self.mutation_listeners: list[Callable[[AwsCall], None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = buffer_body(environ)
        try:
            call = parse_call(environ, body)
        except Exception:
            log.exception("could not read an AWS call; passing it to moto untouched")
            call = None
        if call is None:
            return self.app(environ, start_response)

        fault = self.faults.take(call)
        if fault is not None:
            return self._answer(render_error(call, fault.code, fault.message, fault.status), start_response)
        limit = self.rate_limits.check(caller_account(call), call)
        if limit is not None:
            return self._answer(render_error(call, limit.code, limit.message, limit.status), start_response)

        if call.service not in TRAIL_SERVICES or not is_mutating(call.action):
            return self.app(environ, start_response)
        return self._recorded(call, environ, start_response)

    def _recorded(
        self, call: AwsCall, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, capture)
        try:
            chunks = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        payload = b"".join(chunks)
        status = int(str(captured.get("status", "500")).split()[0])
        try:
            self.cloudtrail.record(call, status, list(captured.get("headers", [])), payload)
        except Exception:
            # The caller's call succeeded; a CloudTrail bug must not turn it into a failure.
            log.exception("CloudTrail recording failed for %s", call.action)
        if 200 <= status < 300:
            for listener in list(self.mutation_listeners):
                try:
                    listener(call)
                except Exception:
                    log.exception("a mutation listener failed for %s", call.action)
        return [payload]

    @staticmethod
    def _answer(error: ErrorResponse, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(error.status_line, [*error.headers, ("Content-Length", str(len(error.body)))])
        return [error.body]
