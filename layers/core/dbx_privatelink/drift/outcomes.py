"""One workspace's drift check: the scan Map's item (ScanWorkspace's input) and what was found, and
DetectDrift's output. Apart from the scan state machine's models (models.py), which neither step uses."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from dbx_privatelink.models.base import StepModel

# What the Map's item states say of a workspace they did not scan. The ASL writes FAILED itself (its Catch
# path is a Pass state): tests/unit/test_drift_fleet.py holds the two to the same word.
NOT_REACHED = "not reached: the scan's time budget was spent"
FAILED = "failed"


class WorkspaceOutcome(StepModel):
    workspace_key: str
    outcome: str
    mode: str = ""
    execution_arn: str | None = None
    findings: list[str] = []
    error: str | None = None  # the error class that stopped this workspace's scan (outcome "failed")


class DetectDriftOutput(StepModel):
    event_id: str
    event_name: str
    outcome: str  # handled | ignored
    reason: str = ""
    workspaces: list[WorkspaceOutcome] = []


class ScanWorkspaceInput(BaseModel):
    """One item of the Map: which workspace, its place in the tick, and the tick's deadline."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    workspace_key: Annotated[str, Field(min_length=1, max_length=64)]
    index: Annotated[int, Field(ge=0)]
    scan_id: Annotated[str, Field(min_length=1)]
    scan_time: str  # the tick's start: the drift record's event_time
    deadline: datetime
    max_concurrency: Annotated[int, Field(ge=1)]

    @property
    def first_wave(self) -> bool:
        """The first max_concurrency items run whatever the budget: every tick moves the fleet forward."""
        return self.index < self.max_concurrency
