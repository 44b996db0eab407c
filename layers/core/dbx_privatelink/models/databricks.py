"""The Databricks objects: registering the endpoints, the private access settings, the network and the
workspace."""

from dbx_privatelink.models.base import Action, PollState, StepModel
from dbx_privatelink.models.endpoints import EndpointState, Registration
from dbx_privatelink.models.spec_step import SpecNamesStep, SpecStep


class RegisterEndpointsInput(SpecNamesStep):
    endpoints: list[EndpointState]


class EnsurePrivateAccessSettingsInput(SpecStep):
    registrations: list[Registration]


class PrivateAccessSettingsResult(StepModel):
    private_access_settings_id: str
    action: Action


class EnsureNetworkInput(SpecStep):
    registrations: list[Registration]


class NetworkResult(StepModel):
    network_id: str
    action: Action
    replaced_network_id: str | None = None


class EnsureWorkspaceInput(SpecStep):
    network: NetworkResult
    private_access_settings: PrivateAccessSettingsResult


class WorkspaceResult(StepModel):
    workspace_id: int
    action: Action
    deployment_name: str | None = None
    status: str = ""


class CheckWorkspaceRunningInput(SpecNamesStep):
    workspace: WorkspaceResult
    poll: PollState


class RetireNetworkInput(SpecNamesStep):
    network: NetworkResult


class RetireNetworkOutput(StepModel):
    deleted_network_id: str | None = None
