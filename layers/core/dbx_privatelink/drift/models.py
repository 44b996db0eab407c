"""Inputs and outputs of the scan state machine (one item's input and outcome, and DetectDrift's output, are in
outcomes.py)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The package's base of deferred-build models (built on first use, not at import).
from dbx_privatelink.drift.orphan_models import OrphanReport
from dbx_privatelink.drift.outcomes import FAILED, NOT_REACHED, WorkspaceOutcome
from dbx_privatelink.models.base import StepModel

# Step Functions runs at most 40 iterations of an inline Map at once, whatever MaxConcurrency says.
MAX_INLINE_MAP_CONCURRENCY = 40


# --- the scan state machine (statemachine/scan_fleet.asl.json) ----------------------------------------


class ScanRequest(BaseModel):
    """The scan execution's input: the schedule's Scheduled Event (nothing here is read from it), or a
    manual start's overrides of the template's budget and concurrency for that one run."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    budget_seconds: Annotated[int, Field(ge=0, le=86400)] | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=MAX_INLINE_MAP_CONCURRENCY)] | None = None


class ScanPlanInput(BaseModel):
    """ScanPlan's input: the tick's identity from the execution context, the template's scan settings
    (DefinitionSubstitutions, hence strings the model turns into numbers) and the execution input."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    scan_id: Annotated[str, Field(min_length=1, max_length=80)]  # the execution name: unique per tick
    execution_arn: Annotated[
        str, Field(pattern=r"^arn:aws[a-z-]*:states:[^:]+:\d{12}:execution:[^:]+:[^:]+$")
    ]
    started_at: datetime
    scan_rate_minutes: Annotated[int, Field(ge=1, le=1440)]
    max_concurrency: Annotated[int, Field(ge=1, le=MAX_INLINE_MAP_CONCURRENCY)]
    request: ScanRequest = Field(default_factory=ScanRequest)


class PlannedWorkspace(StepModel):
    workspace_key: str
    last_scanned_at: str | None = None  # None: never reached by a scan


class ScanPlan(StepModel):
    """ScanPlan's output: the workspaces of this tick in scan order, the budget and the concurrency."""

    scan_id: str
    started_at: str
    deadline: str  # no item past the first wave starts after it (ISO 8601 UTC)
    budget_seconds: int
    max_concurrency: int
    workspaces: list[PlannedWorkspace] = []
    busy: list[str] = []  # being reconciled (lease held): the first few, by key
    busy_count: int = 0
    deferred: int = 0  # past the per-tick cap: first in line next tick
    skipped: str = ""  # why this tick scans nothing (an earlier tick still running)


class ScanDriftOutput(StepModel):
    """The scan state machine's output: one tick of the fleet scan, one outcome per planned workspace."""

    scan_id: str
    started_at: str
    deadline: str = ""
    budget_seconds: int = 0
    max_concurrency: int = 0
    planned: int = 0
    busy: list[str] = []
    busy_count: int = 0
    deferred: int = 0
    skipped: str = ""
    workspaces: list[WorkspaceOutcome] = []
    # Databricks objects the application made that nothing uses: removed (or, paused, only reported).
    orphans: OrphanReport = Field(default_factory=OrphanReport)

    @property
    def reached(self) -> list[WorkspaceOutcome]:
        """The workspaces this tick scanned (in sync, drifted, skipped by the scan itself, or duplicate)."""
        return [w for w in self.workspaces if w.outcome not in (NOT_REACHED, FAILED)]

    @property
    def drifted(self) -> list[WorkspaceOutcome]:
        return [w for w in self.workspaces if w.findings]

    @property
    def failed(self) -> list[WorkspaceOutcome]:
        return [w for w in self.workspaces if w.outcome == FAILED]

    @property
    def not_reached(self) -> list[str]:
        return [w.workspace_key for w in self.workspaces if w.outcome == NOT_REACHED]
