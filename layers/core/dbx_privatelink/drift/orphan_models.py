"""The orphan sweep's models: Databricks objects this application made that nothing uses any more
(decommission/orphans.py), and ScanOrphans's input. Apart from drift.models so that the decommission
functions, which report the orphans they find, do not load the drift scan's models."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from dbx_privatelink.models.base import StepModel


class Orphan(StepModel):
    """A Databricks object this application made that nothing uses any more (decommission/orphans.py)."""

    kind: Literal["registration", "network"]
    id: str
    name: str
    reason: str
    action: Literal["deleted", "found", "in use"] = "found"


class OrphanReport(StepModel):
    orphans: list[Orphan] = []
    skipped: str = ""
    deferred: int = 0  # found past the per-run cap: left to the next sweep
    failed: list[str] = []  # accounts not swept this time, each with its error


class ScanOrphansInput(BaseModel):
    """ScanOrphans's input in the scan state machine: nothing to do when the tick itself is skipped."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    scan_id: str = ""
    skipped: str = ""
