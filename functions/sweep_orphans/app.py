"""Sweep orphans: a door into dbx_privatelink.decommission.orphans.sweep_orphans."""

from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.decommission.orphans import sweep_orphans
from dbx_privatelink.handler import step

handler = step(DeletionInput, sweep_orphans, needs=("store", "databricks"))
