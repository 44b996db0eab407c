"""Databricks PrivateLink facts kept as data: endpoint services per region and required ports."""

import json
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UseCase = Literal["WORKSPACE_ACCESS", "DATAPLANE_RELAY_ACCESS"]


class RegionServices(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    workspace_service: str = Field(pattern=r"^com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]+$")
    relay_service: str = Field(pattern=r"^com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]+$")
    private_dns_name: str

    def use_case_of(self, service_name: str) -> UseCase | None:
        """WORKSPACE_ACCESS or DATAPLANE_RELAY_ACCESS for one of this region's services, else None."""
        if service_name == self.workspace_service:
            return "WORKSPACE_ACCESS"
        if service_name == self.relay_service:
            return "DATAPLANE_RELAY_ACCESS"
        return None


PortSpec = int | tuple[int, int]


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    regions: dict[str, RegionServices]
    workspace_sg_egress_tcp_ports: tuple[PortSpec, ...]
    endpoint_sg_ingress_tcp_ports: tuple[PortSpec, ...]

    def region(self, name: str) -> RegionServices | None:
        return self.regions.get(name)

    def region_problem(self, name: str) -> str | None:
        """Why a spec for `name` cannot be reconciled with this catalog (naming the regions it can), or None."""
        if name in self.regions:
            return None
        return (
            f"region: Databricks offers no PrivateLink endpoint services in {name} that this deployment's catalog "
            f"knows; choose one of {', '.join(sorted(self.regions))}, or add the region's services with the "
            "stack's EndpointServicesJson parameter"
        )


def port_ranges(ports: tuple[PortSpec, ...]) -> list[tuple[int, int]]:
    """Normalise a port list of ints and [from, to] pairs into (from, to) ranges."""
    return [(p, p) if isinstance(p, int) else (p[0], p[1]) for p in ports]


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with the package."""
    text = resources.files("dbx_privatelink").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return Catalog.model_validate(json.loads(text))


def load_catalog(override_json: str | None) -> Catalog:
    """The shipped catalog, with regions replaced or added from an override document when one is given."""
    base = default_catalog()
    if not override_json:
        return base
    extra = json.loads(override_json)
    regions = dict(base.regions)
    for name, services in extra.get("regions", extra).items():
        regions[name] = RegionServices.model_validate(services)
    return base.model_copy(update={"regions": regions})
