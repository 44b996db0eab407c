"""Inputs and outputs of the decommission state machine's steps (statemachine/decommission_workspace.asl.json).

Each step returns only its own result and the ASL places it; the steps after BeginDecommission share one
context (which workspace, how, in which account and region, and the ledger's claim token). The first and last
steps' models (BeginDecommission's, the run's results gathered, FinishDecommission's and
RecordDecommissionFailure's) are in run_models.py.
"""

from typing import Any, Literal

from pydantic import Field

from dbx_privatelink.decommission import DecommissionMode
from dbx_privatelink.models.base import PacingState, PollState, StepModel
from dbx_privatelink.shared_key import SharedKind

Decision = Literal["delete", "keep", "gone"]
PlanStatus = Literal["ready", "not_managed", "already_decommissioned", "refused"]


class DecommissionContext(StepModel):
    """What every step after BeginDecommission needs, as BeginDecommission found it."""

    workspace_key: str
    mode: DecommissionMode
    region: str
    account_id: str
    token: str  # the ledger's claim token: one per workspace, so a re-run takes over its own claims
    spec: dict[str, Any]
    delete_existing_workspace: bool = False


class PlanItem(StepModel):
    """One resource and what the decommission does with it, and why."""

    kind: str  # "workspace", "network", "vpc endpoint", "resolver rule" ... (see plan.KIND_ORDER)
    name: str = ""  # the role, the natural key or the name the resource is known by
    ids: list[str] = []
    action: Decision
    reason: str = ""
    used_by: list[str] = []  # other workspaces that still use it
    # Shared resources: the ledger entry (SHARED#<kind>#<key>) and whether the application made it, so that
    # the last workspace out deletes it (decided again when the references are released).
    shared_key: str = ""
    eligible: bool = False


class DecommissionPlan(StepModel):
    """Every resource of the workspace in dependency order, with delete / keep / gone and the reason."""

    workspace_key: str
    mode: DecommissionMode
    status: PlanStatus = "ready"
    reason: str = ""
    items: list[PlanItem] = []
    notes: list[str] = []

    def ids_to_delete(self, kind: str) -> list[str]:
        return [i for item in self.items if item.kind == kind and item.action == "delete" for i in item.ids]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.action] = counts.get(item.action, 0) + 1
        return counts


class StepContext(StepModel):
    context: DecommissionContext
    execution_name: str = ""


class PlanDecommissionInput(StepContext):
    pass


class SharedResource(StepModel):
    """A shared resource this decommission claimed in the ledger (it deletes it, then forgets the entry)."""

    kind: SharedKind
    key: str
    ids: list[str] = []


class ReleaseSharedInput(StepContext):
    plan: DecommissionPlan


class ReleaseSharedOutput(StepModel):
    claimed: list[SharedResource] = []
    kept: list[PlanItem] = []


class DeletionInput(StepContext):
    """A deleting step of a Wait -> Delete -> Choice loop: it deletes what is left and says whether
    anything is still on its way out (or refused as still in use, which is waited for, never taken as done)."""

    plan: DecommissionPlan | None = None
    claimed: list[SharedResource] = []
    poll: PollState = Field(default_factory=PollState)
    pacing: PacingState = Field(default_factory=PacingState)


class DeletionProgress(StepModel):
    poll: PollState
    pacing: PacingState = Field(default_factory=PacingState)  # wait_seconds > 0: nothing done yet
    kept: list[PlanItem] = []  # decided on the way: kept, and why
