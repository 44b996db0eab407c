"""The inputs of the steps that make the Databricks objects from the spec: the private access settings, the
network and the workspace (the steps that need only the spec's names take spec_names.py's). They read the
spec through a view of the sections those objects are made from, so that they create and build neither the
DNS section's models nor the rest of the spec's."""

from pydantic import ConfigDict, Field

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.models.databricks import NetworkResult, PrivateAccessSettingsResult
from dbx_privatelink.models.endpoints import Registration
from dbx_privatelink.spec_sections import DatabricksSection, NetworkSection, PrivateAccess


class DatabricksSpec(StepModel):
    """The spec as a Databricks object step reads it. The spec was validated in full where it entered
    (AcquireLease, Preflight); the sections these steps read are validated again here, the others ignored."""

    # An in-process caller (a test running a step) may hand over the parsed WorkspaceSpec: read its attributes.
    model_config = ConfigDict(extra="ignore", defer_build=True, frozen=True, from_attributes=True)
    workspace_key: str
    region: str
    databricks: DatabricksSection
    private_access: PrivateAccess = Field(default_factory=PrivateAccess)
    network: NetworkSection


class DatabricksSpecStep(StepModel):
    spec: DatabricksSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""


class EnsurePrivateAccessSettingsInput(DatabricksSpecStep):
    registrations: list[Registration]


class EnsureNetworkInput(DatabricksSpecStep):
    registrations: list[Registration]


class EnsureWorkspaceInput(DatabricksSpecStep):
    network: NetworkResult
    private_access_settings: PrivateAccessSettingsResult
