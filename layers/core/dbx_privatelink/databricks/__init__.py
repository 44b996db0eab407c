"""The Databricks Account API adapter: a thin `requests` client with OAuth M2M and typed errors."""

from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.databricks.models import (
    Credentials,
    Network,
    PrivateAccessSettings,
    StorageConfiguration,
    VpcEndpoint,
    Workspace,
)

__all__ = [
    "Credentials",
    "DatabricksAccountClient",
    "Network",
    "PrivateAccessSettings",
    "StorageConfiguration",
    "VpcEndpoint",
    "Workspace",
]
