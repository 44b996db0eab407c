"""What drift found for each workspace, and DetectDrift's output: apart from the scan state machine's models
(models.py), which DetectDrift does not use."""

from pydantic import Field

from dbx_privatelink.models.base import StepModel


class WorkspaceOutcome(StepModel):
    workspace_key: str
    outcome: str
    mode: str = ""
    execution_arn: str | None = None
    findings: list[str] = Field(default_factory=list)
    error: str | None = None  # the error class that stopped this workspace's scan (outcome "failed")


class DetectDriftOutput(StepModel):
    event_id: str
    event_name: str
    outcome: str  # handled | ignored
    reason: str = ""
    workspaces: list[WorkspaceOutcome] = Field(default_factory=list)
