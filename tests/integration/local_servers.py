"""Shared setup of the integration tests of the local stack's pieces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from dbx_privatelink_local.aws import LocalAws
from dbx_privatelink_local.lambda_runtime import InProcessLambdaRuntime
from dbx_privatelink_local.sfn import StepFunctionsControl, disable_step_functions, enable_step_functions
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"


@dataclass
class MotoWithRuntime:
    endpoint_url: str
    runtime: InProcessLambdaRuntime
    control: StepFunctionsControl | None
    session: boto3.session.Session


@contextmanager
def moto_with_runtime(*, step_functions: bool) -> Iterator[MotoWithRuntime]:
    """A plain moto server on loopback with the in-process Lambda runtime (and the ASL interpreter)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    control = enable_step_functions(TimeScale(0.001)) if step_functions else None
    runtime = InProcessLambdaRuntime(endpoint_url).install()
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_PORT", str(port))
        try:
            yield MotoWithRuntime(endpoint_url, runtime, control, session)
        finally:
            runtime.uninstall()
            if step_functions:
                disable_step_functions()
            server.stop()


def operator_client(aws: LocalAws, service: str, region: str = REGION) -> Any:
    """A client as a human operator's (an unknown key), without SDK retries: one call is one request."""
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name=region,
        aws_access_key_id="AKIAOPERATOR",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
