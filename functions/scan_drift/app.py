"""Scan drift: a door into dbx_privatelink.drift.detector.scan_drift (the scheduled scan)."""

from dbx_privatelink.drift.detector import scan_drift
from dbx_privatelink.drift.events import ScheduledEvent
from dbx_privatelink.handler import step

handler = step(ScheduledEvent, scan_drift, needs=("store", "databricks", "state_machine", "notify", "drift"))
