"""Delete resolver endpoints: a door into dbx_privatelink.decommission.dns.delete_resolver_endpoints."""

from dbx_privatelink.decommission.dns import delete_resolver_endpoints
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_resolver_endpoints, needs=("shared",))
