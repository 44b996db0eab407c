"""The AWS service endpoints a spec asks for (endpoints.aws_services), from the spec alone: what preflight
plans and what the decommission counts among a workspace's shared resources, computed the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.models.endpoints import EndpointPlan

if TYPE_CHECKING:
    from dbx_privatelink.spec import WorkspaceSpec


def aws_service_name(region: str, service: str) -> str:
    return f"com.amazonaws.{region}.{service}"


def aws_endpoint_plans(
    spec: WorkspaceSpec, main_route_table: str | None, problems: list[str]
) -> list[EndpointPlan]:
    """The AWS service endpoints of endpoints.aws_services: S3 as a gateway, the others as interfaces."""
    net = spec.network
    plans: list[EndpointPlan] = []
    for service in spec.endpoints.aws_services:
        name = aws_service_name(spec.region, service)
        if service == "s3":
            tables = spec.endpoints.s3_route_table_ids or ([main_route_table] if main_route_table else [])
            if not tables:
                problems.append(
                    "endpoints.s3_route_table_ids: the VPC has no main route table; list route tables"
                )
            plans.append(
                EndpointPlan(
                    role="s3",
                    vpc_id=net.vpc_id,
                    service_name=name,
                    endpoint_type="Gateway",
                    route_table_ids=tables,
                )
            )
        else:
            plans.append(
                EndpointPlan(
                    role=service,
                    vpc_id=net.vpc_id,
                    service_name=name,
                    subnet_ids=net.workspace_subnet_ids,
                    # The endpoint group, not the workspace groups: preflight holds it to admitting 443 from
                    # every workspace set, and the workspaces of a VPC share it, so one group serves the
                    # whole fleet of the VPC (the groups-per-interface quota, 5, never grows with it).
                    security_group_ids=[net.endpoint_security_group_id],
                    private_dns_at_create=True,
                )
            )
    return plans
