"""The Databricks objects as the steps leave them: the private access settings, the network and the workspace.
The steps' inputs are in databricks_steps.py and spec_names.py: this part loads neither them nor the spec."""

from dbx_privatelink.models.base import Action, StepModel


class PrivateAccessSettingsResult(StepModel):
    private_access_settings_id: str
    action: Action


class NetworkResult(StepModel):
    network_id: str
    action: Action
    replaced_network_id: str | None = None


class WorkspaceResult(StepModel):
    workspace_id: int
    action: Action
    deployment_name: str | None = None
    status: str = ""


class RetireNetworkOutput(StepModel):
    deleted_network_id: str | None = None
