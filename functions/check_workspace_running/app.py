"""Check workspace running: a door into dbx_privatelink.reconcile.databricks_objects.check_workspace_running."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.spec_names import CheckWorkspaceRunningInput
from dbx_privatelink.reconcile.databricks_objects import check_workspace_running

handler = step(CheckWorkspaceRunningInput, check_workspace_running, needs=("databricks",))
