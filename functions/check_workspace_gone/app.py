"""Check workspace gone: a door into dbx_privatelink.decommission.databricks_objects.check_workspace_gone."""

from dbx_privatelink.decommission.databricks_objects import check_workspace_gone
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, check_workspace_gone, needs=("databricks",))
