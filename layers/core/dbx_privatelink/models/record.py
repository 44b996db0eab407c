"""Preflight's plan and the branches' results (what RecordAndRelease stores; its input and output, and
RecordFailure's, are in record_steps.py)."""

from typing import Any

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.models.databricks import NetworkResult, PrivateAccessSettingsResult, WorkspaceResult
from dbx_privatelink.models.endpoints import EndpointPlan, EndpointState, Registration


class SharedRef(StepModel):
    """A shared resource the workspace refers to (ledger.SharedKey) and its id as the ledger knew it."""

    kind: str
    key: str
    resource_id: str = ""


class PrivateLinkResult(StepModel):
    """What the PrivateLink branch leaves in its output."""

    endpoints: list[EndpointState] = []
    registrations: list[Registration] = []
    private_access_settings: PrivateAccessSettingsResult | None = None
    network: NetworkResult | None = None
    workspace: WorkspaceResult | None = None


class ConvergedResult(StepModel):
    """A converged workspace's result in the Reconcile branches' shape, from the live reads and the record."""

    privatelink: PrivateLinkResult
    dns: dict[str, Any] | None = None
    aws_endpoints: list[EndpointState] = []


class PreflightOutput(StepModel):
    # The Databricks endpoints (the critical path) and the AWS-service endpoints (their own branch).
    endpoints: list[EndpointPlan]
    aws_endpoints: list[EndpointPlan] = []
    private_dns_name: str
    warnings: list[str] = []
    shared: list[SharedRef] = []
    # Set when nothing is to be done (the state machine then skips the Reconcile branches); else why not.
    converged: ConvergedResult | None = None
    converged_reason: str = ""
