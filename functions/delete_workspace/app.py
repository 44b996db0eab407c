"""Delete workspace: a door into dbx_privatelink.decommission.databricks_objects.delete_workspace."""

from dbx_privatelink.decommission.databricks_objects import delete_workspace
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_workspace, needs=("databricks",))
