"""Detect drift: a door into dbx_privatelink.drift.detector.detect_drift (CloudTrail API-call events)."""

from dbx_privatelink.drift.detector import detect_drift
from dbx_privatelink.drift.events import CloudTrailEvent
from dbx_privatelink.handler import step

handler = step(
    CloudTrailEvent, detect_drift, needs=("store", "state_machine", "notify", "drift", "own_roles")
)
