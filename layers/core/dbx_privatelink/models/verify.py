"""VerifyDns: its input (the spec and the workspace's endpoints) and what it found for each name."""

from typing import Literal

from dbx_privatelink.models.base import StepModel
from dbx_privatelink.models.dns_spec import DnsSpecStep
from dbx_privatelink.models.endpoints import EndpointState


class VerifyDnsInput(DnsSpecStep):
    private_dns_name: str
    endpoints: list[EndpointState] = []


class NameVerification(StepModel):
    name: str
    expected: list[str] = []  # empty: any address will do
    answers: list[str] = []
    status: str  # NOERROR, NXDOMAIN, TIMEOUT ...
    ok: bool
    answered_by: str = ""


class VerifyDnsOutput(StepModel):
    status: Literal["verified", "skipped"]
    reason: str = ""
    resolver: str = ""
    names: list[NameVerification] = []
