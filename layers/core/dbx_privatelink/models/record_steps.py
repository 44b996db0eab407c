"""RecordAndRelease's and RecordFailure's input and output: apart from record.py (preflight's plan and the
branches' results), which preflight and the drift scan load too."""

from typing import Any

from dbx_privatelink.models.base import StepError, StepModel
from dbx_privatelink.models.endpoints import EndpointState
from dbx_privatelink.models.lease import AcquireLeaseOutput
from dbx_privatelink.models.record import PrivateLinkResult, SharedRef


class RecordAndReleaseInput(StepModel):
    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    lease: AcquireLeaseOutput
    privatelink: PrivateLinkResult
    aws_endpoints: list[EndpointState] = []
    shared: list[SharedRef] = []
    dns: dict[str, Any] | None = None
    # VerifyDns's result (absent when the spec asks for no DNS verification).
    verification: dict[str, Any] | None = None
    rerun_count: int = 0


class RecordAndReleaseOutput(StepModel):
    rerun: bool
    rerun_count: int
    spec: dict[str, Any] | None = None
    summary: dict[str, Any] = {}


class RecordFailureInput(StepModel):
    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    spec: dict[str, Any]
    error: StepError


class RecordFailureOutput(StepModel):
    error: str
    cause: str
