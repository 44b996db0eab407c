"""What the DNS steps read of the spec the state machine passes them whole: its names, the workspace VPC,
the front-end VPC and the DNS section. Apart from spec_step.py, so that these steps validate the DNS section
without creating, or building the validator of, the rest of the spec's models."""

from typing import TYPE_CHECKING

from pydantic import ConfigDict

from dbx_privatelink.dns.spec import DnsSection
from dbx_privatelink.models.base import StepModel

if TYPE_CHECKING:
    from dbx_privatelink.spec import WorkspaceSpec


class _View(StepModel):
    # An in-process caller (a test running a step) may hand over the parsed WorkspaceSpec: read its attributes.
    model_config = ConfigDict(extra="ignore", defer_build=True, frozen=True, from_attributes=True)


class VpcRef(_View):
    vpc_id: str


class DnsSpec(_View):
    """The spec as a DNS step reads it. The spec was validated in full where it entered (AcquireLease,
    Preflight); the DNS section, which these steps read throughout, is validated again here, the other
    sections are ignored but for the workspace key, the region and two VPC ids."""

    workspace_key: str
    region: str
    network: VpcRef
    front_end: VpcRef | None = None
    dns: DnsSection | None = None


class DnsSpecStep(StepModel):
    """Input of a DNS step that reads the spec."""

    spec: DnsSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""


if TYPE_CHECKING:
    # What the DNS functions read: a DNS step's view, or the whole spec (preflight, the plan, the scan).
    type SpecOfDns = DnsSpec | WorkspaceSpec
