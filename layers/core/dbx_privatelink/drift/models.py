"""Inputs and outputs of the drift functions."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WorkspaceOutcome(BaseModel):
    workspace_key: str
    outcome: str
    mode: str = ""
    execution_arn: str | None = None
    findings: list[str] = Field(default_factory=list)


class DetectDriftOutput(BaseModel):
    event_id: str
    event_name: str
    outcome: str  # handled | ignored
    reason: str = ""
    workspaces: list[WorkspaceOutcome] = Field(default_factory=list)


class ScanDriftOutput(BaseModel):
    scan_id: str
    scanned: int
    drifted: int
    workspaces: list[WorkspaceOutcome] = Field(default_factory=list)
