"""Ensure private access settings: a door into dbx_privatelink.reconcile.databricks_objects.ensure_private_access_settings."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.databricks_steps import EnsurePrivateAccessSettingsInput
from dbx_privatelink.reconcile.databricks_objects import ensure_private_access_settings

handler = step(
    EnsurePrivateAccessSettingsInput, ensure_private_access_settings, needs=("store", "databricks")
)
