"""Delete registrations: a door into dbx_privatelink.decommission.databricks_objects.delete_registrations."""

from dbx_privatelink.decommission.databricks_objects import delete_registrations
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_registrations, needs=("databricks", "shared"))
