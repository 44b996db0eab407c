"""The inputs of the steps that make the Databricks objects from the spec: the private access settings, the
network and the workspace (the steps that need only the spec's names take spec_names.py's)."""

from dbx_privatelink.models.databricks import NetworkResult, PrivateAccessSettingsResult
from dbx_privatelink.models.endpoints import Registration
from dbx_privatelink.models.spec_step import SpecStep


class EnsurePrivateAccessSettingsInput(SpecStep):
    registrations: list[Registration]


class EnsureNetworkInput(SpecStep):
    registrations: list[Registration]


class EnsureWorkspaceInput(SpecStep):
    network: NetworkResult
    private_access_settings: PrivateAccessSettingsResult
