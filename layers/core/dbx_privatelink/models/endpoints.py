"""The VPC endpoints: the plan preflight resolves, their state, their registrations, and the inputs and
outputs of the steps that create, check and turn on private DNS for them (none needs the spec)."""

from typing import Literal

from pydantic import Field

from dbx_privatelink.models.base import (
    DATABRICKS_ROLES,
    Action,
    EndpointRole,
    PacingState,
    PollState,
    StepModel,
)


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


class EnablePrivateDnsInput(StepModel):
    region: str
    endpoints: list[EndpointState]
    pacing: PacingState = Field(default_factory=PacingState)


class EnablePrivateDnsOutput(StepModel):
    enabled: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)
    changed: bool = False  # something was turned on: the endpoints pass through pending again
    pacing: PacingState = Field(default_factory=PacingState)  # wait_seconds > 0: nothing done yet


class RegisterEndpointsOutput(StepModel):
    registrations: list[Registration]
