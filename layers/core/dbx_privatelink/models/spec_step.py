"""The input of every step that needs the workspace spec (the one part that loads the spec's models). The steps
that need only its names take spec_names.py's."""

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.spec import WorkspaceSpec


class SpecStep(StepModel):
    """Input of every step that needs the spec."""

    spec: WorkspaceSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""
