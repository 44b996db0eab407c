"""The decommission's run as its first and last steps see it: the request and BeginDecommission's input and
output, the steps' results gathered (DecommissionRun), the summary FinishDecommission stores, and
RecordDecommissionFailure's input and output. Apart from models.py, so that the steps between them (the plan,
the release, the deletions) do not create these."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dbx_privatelink.decommission import DecommissionMode
from dbx_privatelink.decommission.models import (
    DecommissionContext,
    DecommissionPlan,
    DeletionProgress,
    PlanItem,
    ReleaseSharedOutput,
    StepContext,
)

# The drift scan reports orphans too: they are defined with its models.
from dbx_privatelink.drift.orphan_models import Orphan, OrphanReport
from dbx_privatelink.models.base import PollState, StepError, StepModel

BeginOutcome = Literal["proceed", "wait", "not_managed", "already_decommissioned"]


class DecommissionRequest(BaseModel):
    """The execution input. Unknown fields are refused: a misspelt `mode` must not fall back to detach."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    workspace_key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{2,39}$")]
    mode: DecommissionMode = "detach"
    # A retrofitted workspace (databricks.workspace.existing_workspace_id) existed before this application:
    # delete mode deletes it only when asked to by name.
    delete_existing_workspace: bool = False


class BeginDecommissionInput(StepModel):
    request: DecommissionRequest
    execution_name: str
    execution_arn: str = ""
    poll: PollState = Field(default_factory=lambda: PollState(wait_seconds=15))


class BeginDecommissionOutput(StepModel):
    """proceed: the lease is ours; wait: another execution holds it (come back after poll.wait_seconds);
    not_managed / already_decommissioned: nothing to do, and nothing was changed."""

    outcome: BeginOutcome
    reason: str = ""
    context: DecommissionContext | None = None
    poll: PollState = Field(default_factory=PollState)


class DecommissionRun(StepModel):
    """The execution's state as FinishDecommission and RecordDecommissionFailure read it."""

    request: dict[str, Any] | None = None
    begin: BeginDecommissionOutput | None = None
    plan: DecommissionPlan | None = None
    release: ReleaseSharedOutput | None = None
    progress: dict[str, DeletionProgress] = {}
    shared_progress: dict[str, dict[str, DeletionProgress]] = {}
    restored_rules: DeletionProgress | None = None
    orphans: OrphanReport | None = None


class FinishDecommissionInput(StepContext):
    execution_arn: str = ""
    started_at: str = ""
    run: DecommissionRun


class DecommissionSummary(StepModel):
    """The execution's output, and what the store keeps of the decommission."""

    workspace_key: str
    mode: DecommissionMode
    deleted: list[PlanItem] = []
    kept: list[PlanItem] = []
    gone: list[PlanItem] = []
    orphans: list[Orphan] = []


class RecordDecommissionFailureInput(StepModel):
    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    request: dict[str, Any]
    error: StepError
    run: DecommissionRun = Field(default_factory=DecommissionRun)


class RecordDecommissionFailureOutput(StepModel):
    error: str
    cause: str
