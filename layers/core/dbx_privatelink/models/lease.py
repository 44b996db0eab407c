"""AcquireLease's input and output: the spec travels as a dict (parsed by the step), the lease as a token."""

from typing import Any

from dbx_privatelink.models.base import StepModel


class AcquireLeaseInput(StepModel):
    spec: dict[str, Any]
    execution_name: str
    execution_arn: str


class AcquireLeaseOutput(StepModel):
    acquired: bool
    generation: int
    fencing_token: str
    spec: dict[str, Any]
    spec_hash: str = ""
    reason: str = ""
    # When not acquired: the execution that holds the lease and will reconcile this spec before it releases.
    holder: str = ""
    holder_arn: str = ""
