"""Custom DNS: Route 53 Resolver endpoints, rules and associations and private hosted zones, as the DNS steps
leave them. The polling steps' inputs are in dns_checks.py, the inputs that carry the spec in dns_steps.py and
VerifyDns's models in verify.py: a polling step loads neither the spec's models nor the endpoints'. The Resolver
endpoints' own are in dns_endpoints.py."""

from typing import Literal

from dbx_privatelink.models.base import Action, StepModel
from dbx_privatelink.models.dns_endpoints import ResolverEndpointsResult, ResolverEndpointState

RuleRole = Literal["forward-all", "aws-names", "inbound-forward"]


class ResolverRuleState(StepModel):
    role: RuleRole
    resolver_rule_id: str
    domain: str
    rule_type: Literal["FORWARD", "SYSTEM"]
    # The VPC of the outbound endpoint the rule forwards through (the DNS VPC or a peered VPC).
    scope_vpc_id: str
    resolver_endpoint_id: str | None = None
    target_ips: list[str] = []
    action: Action = "found"


class EnsureResolverRulesOutput(StepModel):
    endpoints: ResolverEndpointsResult
    rules: list[ResolverRuleState]


class RuleAssociationState(StepModel):
    resolver_rule_association_id: str
    resolver_rule_id: str
    vpc_id: str
    domain: str
    status: str
    action: Action = "found"


class DnsOutboundEndpoint(StepModel):
    resolver_endpoint_id: str
    ips: list[str] = []
    # Indexed with the workspace's resources, so a change to the resolver group reaches the drift detector.
    security_group_id: str | None = None


class DnsInbound(StepModel):
    resolver_endpoint_id: str
    vpc_id: str
    domains: list[str]
    ips: list[str] = []


class DnsPeered(StepModel):
    vpc_id: str
    resolver_endpoint_id: str
    rule_ids: list[str] = []


class ZoneAssociationState(StepModel):
    """A private hosted zone associated with a VPC, as the spec's dns.private_zones asks."""

    hosted_zone_id: str
    zone_name: str
    vpc_id: str
    action: Action = "found"
    change: str | None = None  # the Route 53 change of an association made now, until it is INSYNC


class DnsResult(StepModel):
    """What the DNS branch leaves in its output (record_and_release stores it under summary["dns"])."""

    outbound_endpoint: DnsOutboundEndpoint | None = None
    forward_rule_id: str | None = None
    aws_rule_ids: list[str] = []
    associations: list[RuleAssociationState] = []
    inbound: DnsInbound | None = None
    peered: list[DnsPeered] = []
    zone_associations: list[ZoneAssociationState] = []
    # Every endpoint and rule as the branch left them, and the ids of what this run created (for the ledger).
    resolver_endpoints: list[ResolverEndpointState] = []
    rules: list[ResolverRuleState] = []
    created: list[str] = []
