"""The VPC endpoints: the plan preflight resolves, their state and their registrations. The inputs and outputs
of the steps that make them are in endpoint_steps.py: what records a run loads none of them."""

from typing import Literal

from dbx_privatelink.models.base import (
    DATABRICKS_ROLES,
    Action,
    EndpointRole,
    StepModel,
)


class EndpointPlan(StepModel):
    """One VPC endpoint the workspace needs, as preflight resolved it."""

    role: EndpointRole
    vpc_id: str
    service_name: str
    endpoint_type: Literal["Interface", "Gateway"] = "Interface"
    subnet_ids: list[str] = []
    security_group_ids: list[str] = []
    route_table_ids: list[str] = []
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
