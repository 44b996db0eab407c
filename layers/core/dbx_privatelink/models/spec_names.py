"""The steps that need only the spec's names (its account, workspace key and region): the Databricks steps
that register the endpoints, wait for the workspace and retire a network. Apart from spec_step.py, so that
these steps do not create the spec's models."""

from dbx_privatelink.models.base import PollState, StepModel
from dbx_privatelink.models.databricks import NetworkResult, WorkspaceResult
from dbx_privatelink.models.endpoints import EndpointState


class DatabricksRef(StepModel):
    account_id: str


class SpecNames(StepModel):
    """What a step that only calls Databricks reads of the spec the state machine passes it whole. The spec
    was validated in full where it entered (AcquireLease, Preflight); validating all of it again would build
    its nested models' validator at this step's cold start, for three names."""

    workspace_key: str
    region: str
    databricks: DatabricksRef


class SpecNamesStep(StepModel):
    """Input of a step that needs only the spec's names."""

    spec: SpecNames
    execution_name: str = ""


class RegisterEndpointsInput(SpecNamesStep):
    endpoints: list[EndpointState]


class CheckWorkspaceRunningInput(SpecNamesStep):
    workspace: WorkspaceResult
    poll: PollState


class RetireNetworkInput(SpecNamesStep):
    network: NetworkResult
