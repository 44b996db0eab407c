"""Delete Databricks objects: a door into dbx_privatelink.decommission.databricks_objects.delete_databricks_objects."""

from dbx_privatelink.decommission.databricks_objects import delete_databricks_objects
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_databricks_objects, needs=("databricks",))
