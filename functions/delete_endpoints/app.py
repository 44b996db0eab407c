"""Delete endpoints: a door into dbx_privatelink.decommission.endpoints.delete_endpoints."""

from dbx_privatelink.decommission.endpoints import delete_endpoints
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_endpoints, needs=("shared",))
