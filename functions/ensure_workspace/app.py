"""Ensure workspace: a door into dbx_privatelink.reconcile.databricks_objects.ensure_workspace."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.databricks_steps import EnsureWorkspaceInput
from dbx_privatelink.reconcile.databricks_objects import ensure_workspace

handler = step(EnsureWorkspaceInput, ensure_workspace, needs=("store", "databricks"))
