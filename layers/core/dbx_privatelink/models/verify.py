"""VerifyDns: its input (the spec and the workspace's endpoints) and what it found for each name."""

from typing import Literal

from pydantic import Field

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.models.dns_spec import DnsSpecStep
from dbx_privatelink.models.endpoints import EndpointState


class VerifyDnsInput(DnsSpecStep):
    private_dns_name: str
    endpoints: list[EndpointState] = Field(default_factory=list)


class NameVerification(StepModel):
    name: str
    expected: list[str] = Field(default_factory=list)  # empty: any address will do
    answers: list[str] = Field(default_factory=list)
    status: str  # NOERROR, NXDOMAIN, TIMEOUT ...
    ok: bool
    answered_by: str = ""


class VerifyDnsOutput(StepModel):
    status: Literal["verified", "skipped"]
    reason: str = ""
    resolver: str = ""
    names: list[NameVerification] = Field(default_factory=list)
