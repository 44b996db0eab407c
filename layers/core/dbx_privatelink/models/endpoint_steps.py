"""The inputs and outputs of the steps that create and check the VPC endpoints, turn on their private DNS and
register them (none needs the spec)."""

from pydantic import Field

from dbx_privatelink.models.base import PacingState, PollState, StepModel
from dbx_privatelink.models.endpoints import EndpointPlan, EndpointState, Registration


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
    registrations: list[Registration] = []
    poll: PollState


class EnablePrivateDnsInput(StepModel):
    region: str
    endpoints: list[EndpointState]
    pacing: PacingState = Field(default_factory=PacingState)


class EnablePrivateDnsOutput(StepModel):
    enabled: list[str] = []
    already: list[str] = []
    changed: bool = False  # something was turned on: the endpoints pass through pending again
    pacing: PacingState = Field(default_factory=PacingState)  # wait_seconds > 0: nothing done yet


class RegisterEndpointsOutput(StepModel):
    registrations: list[Registration]
