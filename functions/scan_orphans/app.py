"""Scan orphans: a door into dbx_privatelink.decommission.orphans.scan_orphans (the drift scan's sweep)."""

from dbx_privatelink.decommission.orphans import scan_orphans
from dbx_privatelink.drift.orphan_models import ScanOrphansInput
from dbx_privatelink.handler import step

handler = step(ScanOrphansInput, scan_orphans, needs=("store", "databricks"))
