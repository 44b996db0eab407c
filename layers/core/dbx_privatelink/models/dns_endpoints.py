"""The Route 53 Resolver endpoints as EnsureResolverEndpoints leaves them, the shape the rules are derived from.
Apart from the rest of the DNS results (dns.py), so that the drift scan compares rules without creating those."""

from typing import Literal

from dbx_privatelink.models.base import Action, StepModel

ResolverRole = Literal["outbound", "inbound", "peered-outbound"]


class ResolverEndpointState(StepModel):
    role: ResolverRole
    resolver_endpoint_id: str
    vpc_id: str
    direction: Literal["INBOUND", "OUTBOUND"]
    status: str
    security_group_id: str
    ips: list[str] = []
    action: Action = "found"
    # The group is this application's (made for the endpoint), not one the spec names; created by this run.
    group_managed: bool = False
    group_created: bool = False


class ResolverEndpointsResult(StepModel):
    """The endpoints the spec's dns section needs, as EnsureResolverEndpoints left them."""

    outbound: ResolverEndpointState | None = None
    inbound: ResolverEndpointState | None = None
    peered: list[ResolverEndpointState] = []

    def all(self) -> list[ResolverEndpointState]:
        found = [e for e in (self.outbound, self.inbound) if e is not None]
        return found + list(self.peered)
