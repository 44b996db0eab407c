"""The inputs of the DNS polling steps: the state they poll, not the spec. Apart from dns.py (the branch's
results), which the steps that make the resources, preflight and the drift scan load too."""

from dbx_privatelink.models.base import PollState, StepModel
from dbx_privatelink.models.dns import RuleAssociationState, ZoneAssociationState
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult


class CheckResolverEndpointsInput(StepModel):
    region: str
    endpoints: ResolverEndpointsResult
    poll: PollState


class CheckRuleAssociationsInput(StepModel):
    region: str
    associations: list[RuleAssociationState]
    poll: PollState


class CheckZoneAssociationsInput(StepModel):
    zone_associations: list[ZoneAssociationState]
    poll: PollState
