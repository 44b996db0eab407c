"""Scan workspace: a door into dbx_privatelink.drift.fleet.scan_and_respond (one item of the scan's Map)."""

from dbx_privatelink.drift.fleet import scan_and_respond
from dbx_privatelink.drift.outcomes import ScanWorkspaceInput
from dbx_privatelink.handler import step

handler = step(
    ScanWorkspaceInput, scan_and_respond, needs=("store", "databricks", "state_machine", "notify", "drift")
)
