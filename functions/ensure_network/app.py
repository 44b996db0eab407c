"""Ensure network: a door into dbx_privatelink.reconcile.databricks_objects.ensure_network."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.databricks_steps import EnsureNetworkInput
from dbx_privatelink.reconcile.databricks_objects import ensure_network

handler = step(EnsureNetworkInput, ensure_network, needs=("store", "databricks"))
