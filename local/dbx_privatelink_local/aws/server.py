"""LocalAws: moto's threaded server on 127.0.0.1, wrapped with the local stack's middleware and patches.

    with LocalAws(LocalAwsSettings(cloudtrail_delay=60)) as aws:
        ec2 = boto3.client("ec2", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        ...
        aws.faults.add(service="ec2", action="CreateVpcEndpoint", code="RequestLimitExceeded", status=503)
        aws.rate_limits.refused()     # with LocalAwsSettings(aws_rate_limits=True)
        aws.cloudtrail.flush()
        aws.eventbridge.deliveries()

moto's backends are process-wide, so one LocalAws runs at a time in a process; the patches are installed
once and follow whichever LocalAws is started.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from typing import Any, Self

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from dbx_privatelink.catalog import Catalog, default_catalog
from dbx_privatelink_local.aws import (
    dynamodb_patches,
    ec2_patches,
    eventbridge,
    resolver_patches,
    route53_patches,
    security_group_patches,
)
from dbx_privatelink_local.aws.cloudtrail import CloudTrailEmitter
from dbx_privatelink_local.aws.ec2_patches import EndpointLifecycle
from dbx_privatelink_local.aws.eventbridge import EventBridgeDelivery
from dbx_privatelink_local.aws.faults import FaultInjector
from dbx_privatelink_local.aws.middleware import LocalAwsMiddleware
from dbx_privatelink_local.aws.moto_view import MotoAwsView
from dbx_privatelink_local.aws.rate_limits import AwsRateLimits
from dbx_privatelink_local.aws.resolver_patches import ResolverLifecycle
from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.dns import moto_patches as resolver_listing_patches
from dbx_privatelink_local.timescale import TIME_SCALE, TimeScale

log = logging.getLogger(__name__)

_PATCH_LOCK = threading.Lock()


def install_patches() -> None:
    """Install every moto patch of the local stack (idempotent, once per process)."""
    with _PATCH_LOCK:
        ec2_patches.install()
        eventbridge.install()
        resolver_listing_patches.install()
        resolver_patches.install()
        route53_patches.install()
        dynamodb_patches.install()
        security_group_patches.install()


class _WrappedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app is moto's dispatcher inside our middleware."""

    def __init__(self, middleware: Any, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self._middleware = middleware

    def _server_entry(self) -> None:
        self._middleware.app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, self._middleware, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalAws:
    """The emulated AWS of the local stack: a moto server plus the behaviour moto lacks."""

    def __init__(
        self,
        settings: LocalAwsSettings | None = None,
        time_scale: TimeScale = TIME_SCALE,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings or LocalAwsSettings()
        self.time_scale = time_scale
        self.account_id = DEFAULT_ACCOUNT_ID
        self.faults = FaultInjector()
        self.rate_limits = AwsRateLimits(time_scale)
        self.rate_limits.enabled = self.settings.aws_rate_limits
        if self.settings.endpoint_rate_limit:
            self.rate_limits.ec2_endpoints.enabled = True
        self.endpoints = EndpointLifecycle(self.settings, time_scale, catalog or default_catalog())
        self.resolver = ResolverLifecycle(self.settings, time_scale)
        self.cloudtrail = CloudTrailEmitter(self.settings, time_scale)
        self.eventbridge = EventBridgeDelivery(self.settings, time_scale)
        self.view = MotoAwsView(self.endpoints, self.account_id)
        self._middleware = LocalAwsMiddleware(
            app=lambda environ, start_response: [],
            faults=self.faults,
            rate_limits=self.rate_limits,
            cloudtrail=self.cloudtrail,
        )
        self._server: _WrappedMotoServer | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalAws is not started")
        return self._port

    @property
    def middleware(self) -> LocalAwsMiddleware:
        """The WSGI middleware in front of moto (what benchmarks wrap to count calls)."""
        return self._middleware

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:<port>, for boto3 (endpoint_url=...) and the AWS CLI (--endpoint-url)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Install the patches, start the server on a free loopback port, set MOTO_PORT."""
        if self._server is not None:
            return self
        install_patches()
        # werkzeug logs every request at INFO: thousands of lines per reconcile, none of them useful here.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.endpoints.activate()
        self.resolver.activate()
        security_group_patches.activate(self.settings)
        self.eventbridge.activate()
        self.cloudtrail.start()
        self.eventbridge.start()
        server = _WrappedMotoServer(self._middleware, "127.0.0.1", 0)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        # moto's Step Functions interpreter calls back to localhost:$MOTO_PORT in server mode.
        os.environ["MOTO_PORT"] = str(self._port)
        return self

    def stop(self) -> None:
        """Stop the server and every background thread; pending CloudTrail events are dropped."""
        if self._server is None:
            return
        self.eventbridge.stop()
        self.cloudtrail.stop()
        self.eventbridge.deactivate()
        security_group_patches.deactivate(self.settings)
        self.endpoints.deactivate()
        self.resolver.deactivate()
        self._server.stop()
        self._server = None

    def reset(self) -> None:
        """Empty every moto backend and forget faults, rate-limit tokens and counts, queued events and the
        delivery log."""
        self.moto_api("POST", "/moto-api/reset")
        self.endpoints.reset()
        self.resolver.reset()
        self.faults.clear()
        self.rate_limits.reset()
        self.cloudtrail.reset()
        self.eventbridge.reset()

    def enable_state_machine_execution(self, enabled: bool = True) -> None:
        """Let moto's ASL interpreter run state machines (POST /moto-api/config)."""
        self.moto_api("POST", "/moto-api/config", {"stepfunctions": {"execute_state_machine": enabled}})

    def moto_api(self, method: str, path: str, payload: dict[str, Any] | None = None) -> bytes:
        """Call moto's own HTTP API (/moto-api/...) on this server."""
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.endpoint_url}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
