"""Ensure endpoint: a door into dbx_privatelink.reconcile.endpoints.ensure_endpoint."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.endpoint_steps import EnsureEndpointInput
from dbx_privatelink.reconcile.endpoints import ensure_endpoint

handler = step(EnsureEndpointInput, ensure_endpoint, needs=("shared",))
