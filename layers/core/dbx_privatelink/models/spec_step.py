"""The input of every step that needs the workspace spec (the one part that loads the spec's models), and of
the steps that need only the spec's names: its account, workspace key and region."""

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.spec import WorkspaceSpec


class SpecStep(StepModel):
    """Input of every step that needs the spec."""

    spec: WorkspaceSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""


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
