"""The Databricks Account API emulator: backend (state + rules), routes (HTTP), server (a loopback socket)."""

from dbx_privatelink_local.databricks.clock import ManualClock, TimeScaleScheduler, WallClock
from dbx_privatelink_local.databricks.config import EmulatorConfig
from dbx_privatelink_local.databricks.emulator import DatabricksEmulator
from dbx_privatelink_local.databricks.errors import ApiError
from dbx_privatelink_local.databricks.faults import Fault
from dbx_privatelink_local.databricks.server import EmulatorServer

__all__ = [
    "ApiError",
    "DatabricksEmulator",
    "EmulatorConfig",
    "EmulatorServer",
    "Fault",
    "ManualClock",
    "TimeScaleScheduler",
    "WallClock",
]
