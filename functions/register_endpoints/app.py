"""Register endpoints: a door into dbx_privatelink.reconcile.endpoints.register_endpoints."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.spec_names import RegisterEndpointsInput
from dbx_privatelink.reconcile.endpoints import register_endpoints

handler = step(RegisterEndpointsInput, register_endpoints, needs=("databricks", "shared"))
