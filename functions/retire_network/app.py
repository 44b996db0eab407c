"""Retire network: a door into dbx_privatelink.reconcile.databricks_objects.retire_network."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.spec_names import RetireNetworkInput
from dbx_privatelink.reconcile.databricks_objects import retire_network

handler = step(RetireNetworkInput, retire_network, needs=("databricks",))
