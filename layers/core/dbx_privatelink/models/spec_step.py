"""Preflight's input: the whole workspace spec, validated in full (the one step input that loads all of the
spec's models). The later steps read the spec the state machine passes them through views of the parts they
use: spec_names.py (its names), databricks_steps.py (the sections the Databricks objects are made from),
dns_spec.py (the DNS section)."""

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.spec import WorkspaceSpec


class SpecStep(StepModel):
    """Input of the step that validates the whole spec (Preflight)."""

    spec: WorkspaceSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""
