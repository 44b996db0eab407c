"""The VPC endpoints: the plan preflight resolves, their state and their registrations. The inputs and outputs
of the steps that make them are in endpoint_steps.py: what records a run loads none of them."""

from typing import TYPE_CHECKING, Literal

from dbx_privatelink.models.base import (
    DATABRICKS_ROLES,
    Action,
    EndpointRole,
    StepModel,
)

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import EndpointInfo


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

    @classmethod
    def of(cls, plan: EndpointPlan, info: "EndpointInfo", action: str) -> "EndpointState":
        """The planned endpoint as EC2 describes it, and what this run did about it."""
        return cls.model_validate(
            {
                "role": plan.role,
                "vpc_endpoint_id": info.vpc_endpoint_id,
                "service_name": info.service_name,
                "vpc_id": info.vpc_id,
                "state": info.state,
                "private_dns_enabled": info.private_dns_enabled,
                "action": action,
            }
        )


class Registration(StepModel):
    role: EndpointRole
    aws_vpc_endpoint_id: str
    vpc_endpoint_id: str
    state: str
    use_case: str | None = None
    action: Action = "found"
