"""Scan plan: a door into dbx_privatelink.drift.tick.plan_scan (the first state of the scan state machine)."""

from dbx_privatelink.drift.models import ScanPlanInput
from dbx_privatelink.drift.tick import plan_scan
from dbx_privatelink.handler import step

handler = step(ScanPlanInput, plan_scan, needs=("store",))
