"""Check endpoints available: a door into dbx_privatelink.reconcile.endpoints.check_endpoints_available."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.endpoint_steps import CheckEndpointsInput
from dbx_privatelink.reconcile.endpoints import check_endpoints_available

handler = step(CheckEndpointsInput, check_endpoints_available, needs=("databricks",))
