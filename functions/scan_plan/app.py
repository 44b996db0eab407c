"""Scan plan: a door into dbx_privatelink.drift.fleet.plan_scan (the first state of the scan state machine)."""

from dbx_privatelink.drift.fleet import plan_scan
from dbx_privatelink.drift.models import ScanPlanInput
from dbx_privatelink.handler import step

handler = step(ScanPlanInput, plan_scan, needs=("store",))
