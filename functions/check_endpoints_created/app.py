"""Check endpoints created: a door into dbx_privatelink.reconcile.endpoints.check_endpoints_created."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.endpoint_steps import CheckEndpointsInput
from dbx_privatelink.reconcile.endpoints import check_endpoints_created

handler = step(CheckEndpointsInput, check_endpoints_created, needs=())
