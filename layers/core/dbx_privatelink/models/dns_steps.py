"""The inputs of the DNS steps that read the spec (the Resolver rules and associations, the private zones)."""

from pydantic import Field

from dbx_privatelink.models.dns import DnsResult, ResolverRuleState
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult
from dbx_privatelink.models.dns_spec import DnsSpecStep


class EnsureResolverRulesInput(DnsSpecStep):
    endpoints: ResolverEndpointsResult


class EnsureRuleAssociationsInput(DnsSpecStep):
    endpoints: ResolverEndpointsResult
    rules: list[ResolverRuleState]


class EnsureZoneAssociationsInput(DnsSpecStep):
    dns: DnsResult = Field(default_factory=DnsResult)  # the branch's result so far (empty without Resolver)
