"""Step inputs and outputs: the models at the state machine's boundaries.

Each step returns only its own result; the ASL places it with ResultPath. Inputs ignore the fields a step
does not need, so the ASL can hand a step a slice of the execution state without a reshaping Pass.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dbx_privatelink.spec import WorkspaceSpec

EndpointRole = Literal["workspace", "relay", "front_end", "s3", "sts", "kinesis-streams", "glue"]
DATABRICKS_ROLES: tuple[EndpointRole, ...] = ("workspace", "relay", "front_end")
Action = Literal["created", "adopted", "found", "replaced", "updated", "unchanged", "deleted"]


class StepModel(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


class EndpointPlan(StepModel):
    """One VPC endpoint the workspace needs, as preflight resolved it."""

    role: EndpointRole
    vpc_id: str
    service_name: str
    endpoint_type: Literal["Interface", "Gateway"] = "Interface"
    subnet_ids: list[str] = Field(default_factory=list)
    security_group_ids: list[str] = Field(default_factory=list)
    route_table_ids: list[str] = Field(default_factory=list)
    private_dns_at_create: bool = False
    adopt_id: str | None = None

    @property
    def is_databricks(self) -> bool:
        return self.role in DATABRICKS_ROLES


class EndpointState(StepModel):
    role: EndpointRole
    vpc_endpoint_id: str
    service_name: str
    vpc_id: str
    state: str
    private_dns_enabled: bool = False
    action: Action = "found"

    @property
    def is_databricks(self) -> bool:
        return self.role in DATABRICKS_ROLES


class Registration(StepModel):
    role: EndpointRole
    aws_vpc_endpoint_id: str
    vpc_endpoint_id: str
    state: str
    use_case: str | None = None
    action: Action = "found"


class PacingState(StepModel):
    """A reservation on the stack's shared schedule of EC2 endpoint mutations, carried by the state machine:
    wait `wait_seconds` (a Wait state), then come back with the ticket (`ticket_start`, epoch seconds, for
    `ticket_count` calls)."""

    wait_seconds: int = 0
    ticket_start: float | None = None
    ticket_count: int = 0


# What a reconcile loop waits for: the name of its schedule in reconcile/polling.py.
ScheduleName = Literal[
    "endpoints_created",
    "registration_available",
    "private_dns",
    "aws_endpoints_available",
    "workspace_created",
    "workspace_updated",
    "resolver_endpoints",
    "rule_associations",
    "zone_associations",
]


class PollState(StepModel):
    """A Wait -> Check -> Choice loop's counter: the check returns the next one (`schedule`: what it waits
    for, set by the state machine where one check serves several waits)."""

    attempt: int = 0
    wait_seconds: int = 5
    ready: bool = False
    detail: str = ""
    schedule: ScheduleName | None = None


class SpecStep(StepModel):
    """Input of every step that needs the spec."""

    spec: WorkspaceSpec
    # The execution's name: the holder of the ledger locks a step takes (the ASL passes it to every step).
    execution_name: str = ""


# --- lease ---


class AcquireLeaseInput(StepModel):
    spec: dict[str, Any]
    execution_name: str
    execution_arn: str


class AcquireLeaseOutput(StepModel):
    acquired: bool
    generation: int
    fencing_token: str
    spec: dict[str, Any]
    spec_hash: str = ""
    reason: str = ""
    # When not acquired: the execution that holds the lease and will reconcile this spec before it releases.
    holder: str = ""
    holder_arn: str = ""


# --- preflight ---


class SharedRef(StepModel):
    """A shared resource the workspace refers to (ledger.SharedKey) and its id as the ledger knew it."""

    kind: str
    key: str
    resource_id: str = ""


class PreflightOutput(StepModel):
    # The Databricks endpoints (the critical path) and the AWS-service endpoints (their own branch).
    endpoints: list[EndpointPlan]
    aws_endpoints: list[EndpointPlan] = Field(default_factory=list)
    private_dns_name: str
    warnings: list[str] = Field(default_factory=list)
    shared: list[SharedRef] = Field(default_factory=list)
    # Set when nothing is to be done (the state machine then skips the Reconcile branches); else why not.
    converged: ConvergedResult | None = None
    converged_reason: str = ""


# --- endpoints ---


class EnsureEndpointInput(StepModel):
    workspace_key: str
    region: str
    plan: EndpointPlan
    pacing: PacingState = Field(default_factory=PacingState)


class EnsureEndpointOutput(StepModel):
    """The endpoint, or (no endpoint yet) when to come back to make the change the schedule has room for."""

    endpoint: EndpointState | None = None
    pacing: PacingState = Field(default_factory=PacingState)


class CheckEndpointsInput(StepModel):
    region: str
    account_id: str = ""
    endpoints: list[EndpointState]
    registrations: list[Registration] = Field(default_factory=list)
    poll: PollState


class RegisterEndpointsInput(SpecStep):
    endpoints: list[EndpointState]


class RegisterEndpointsOutput(StepModel):
    registrations: list[Registration]


class EnablePrivateDnsInput(StepModel):
    region: str
    endpoints: list[EndpointState]
    pacing: PacingState = Field(default_factory=PacingState)


class EnablePrivateDnsOutput(StepModel):
    enabled: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)
    changed: bool = False  # something was turned on: the endpoints pass through pending again
    pacing: PacingState = Field(default_factory=PacingState)  # wait_seconds > 0: nothing done yet


# --- Databricks objects ---


class EnsurePrivateAccessSettingsInput(SpecStep):
    registrations: list[Registration]


class PrivateAccessSettingsResult(StepModel):
    private_access_settings_id: str
    action: Action


class EnsureNetworkInput(SpecStep):
    registrations: list[Registration]


class NetworkResult(StepModel):
    network_id: str
    action: Action
    replaced_network_id: str | None = None


class EnsureWorkspaceInput(SpecStep):
    network: NetworkResult
    private_access_settings: PrivateAccessSettingsResult


class WorkspaceResult(StepModel):
    workspace_id: int
    action: Action
    deployment_name: str | None = None
    status: str = ""


class CheckWorkspaceRunningInput(SpecStep):
    workspace: WorkspaceResult
    poll: PollState


class RetireNetworkInput(SpecStep):
    network: NetworkResult


class RetireNetworkOutput(StepModel):
    deleted_network_id: str | None = None


# --- record ---


class PrivateLinkResult(StepModel):
    """What the PrivateLink branch leaves in its output."""

    endpoints: list[EndpointState] = Field(default_factory=list)
    registrations: list[Registration] = Field(default_factory=list)
    private_access_settings: PrivateAccessSettingsResult | None = None
    network: NetworkResult | None = None
    workspace: WorkspaceResult | None = None


class ConvergedResult(StepModel):
    """A converged workspace's result in the Reconcile branches' shape, from the live reads and the record."""

    privatelink: PrivateLinkResult
    dns: dict[str, Any] | None = None
    aws_endpoints: list[EndpointState] = Field(default_factory=list)


# PreflightOutput's `converged` names ConvergedResult, defined after it: the deferred build resolves it in
# this module on first use (handler.step builds a function's input model at its cold start).


class RecordAndReleaseInput(StepModel):
    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    lease: AcquireLeaseOutput
    privatelink: PrivateLinkResult
    aws_endpoints: list[EndpointState] = Field(default_factory=list)
    shared: list[SharedRef] = Field(default_factory=list)
    dns: dict[str, Any] | None = None
    # VerifyDns's result (absent when the spec asks for no DNS verification).
    verification: dict[str, Any] | None = None
    rerun_count: int = 0


class RecordAndReleaseOutput(StepModel):
    rerun: bool
    rerun_count: int
    spec: dict[str, Any] | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class StepError(StepModel):
    Error: str
    Cause: str = ""


class RecordFailureInput(StepModel):
    execution_name: str
    execution_arn: str = ""
    started_at: str = ""
    spec: dict[str, Any]
    error: StepError


class RecordFailureOutput(StepModel):
    error: str
    cause: str


# --- custom DNS (Route 53 Resolver) ---

ResolverRole = Literal["outbound", "inbound", "peered-outbound"]
RuleRole = Literal["forward-all", "aws-names", "inbound-forward"]


class ResolverEndpointState(StepModel):
    role: ResolverRole
    resolver_endpoint_id: str
    vpc_id: str
    direction: Literal["INBOUND", "OUTBOUND"]
    status: str
    security_group_id: str
    ips: list[str] = Field(default_factory=list)
    action: Action = "found"
    # The group is this application's (made for the endpoint), not one the spec names; created by this run.
    group_managed: bool = False
    group_created: bool = False


class ResolverEndpointsResult(StepModel):
    """The endpoints the spec's dns section needs, as EnsureResolverEndpoints left them."""

    outbound: ResolverEndpointState | None = None
    inbound: ResolverEndpointState | None = None
    peered: list[ResolverEndpointState] = Field(default_factory=list)

    def all(self) -> list[ResolverEndpointState]:
        found = [e for e in (self.outbound, self.inbound) if e is not None]
        return found + list(self.peered)


class CheckResolverEndpointsInput(StepModel):
    region: str
    endpoints: ResolverEndpointsResult
    poll: PollState


class EnsureResolverRulesInput(SpecStep):
    endpoints: ResolverEndpointsResult


class ResolverRuleState(StepModel):
    role: RuleRole
    resolver_rule_id: str
    domain: str
    rule_type: Literal["FORWARD", "SYSTEM"]
    # The VPC of the outbound endpoint the rule forwards through (the DNS VPC or a peered VPC).
    scope_vpc_id: str
    resolver_endpoint_id: str | None = None
    target_ips: list[str] = Field(default_factory=list)
    action: Action = "found"


class EnsureResolverRulesOutput(StepModel):
    endpoints: ResolverEndpointsResult
    rules: list[ResolverRuleState]


class EnsureRuleAssociationsInput(SpecStep):
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
    ips: list[str] = Field(default_factory=list)
    # Indexed with the workspace's resources, so a change to the resolver group reaches the drift detector.
    security_group_id: str | None = None


class DnsInbound(StepModel):
    resolver_endpoint_id: str
    vpc_id: str
    domains: list[str]
    ips: list[str] = Field(default_factory=list)


class DnsPeered(StepModel):
    vpc_id: str
    resolver_endpoint_id: str
    rule_ids: list[str] = Field(default_factory=list)


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
    aws_rule_ids: list[str] = Field(default_factory=list)
    associations: list[RuleAssociationState] = Field(default_factory=list)
    inbound: DnsInbound | None = None
    peered: list[DnsPeered] = Field(default_factory=list)
    zone_associations: list[ZoneAssociationState] = Field(default_factory=list)
    # Every endpoint and rule as the branch left them, and the ids of what this run created (for the ledger).
    resolver_endpoints: list[ResolverEndpointState] = Field(default_factory=list)
    rules: list[ResolverRuleState] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)


class EnsureZoneAssociationsInput(SpecStep):
    dns: DnsResult = Field(default_factory=DnsResult)  # the branch's result so far (empty without Resolver)


class CheckRuleAssociationsInput(StepModel):
    region: str
    associations: list[RuleAssociationState]
    poll: PollState


class CheckZoneAssociationsInput(StepModel):
    zone_associations: list[ZoneAssociationState]
    poll: PollState


class VerifyDnsInput(SpecStep):
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
