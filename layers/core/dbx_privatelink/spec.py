"""The workspace spec: the one source of the desired state (YAML for humans, the same JSON as execution input)."""

import hashlib
import json
import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from dbx_privatelink.dns.spec import DnsSection
from dbx_privatelink.spec_sections import (
    DatabricksSection,
    NetworkSection,
    PrivateAccess,
    Region,
    RouteTableId,
    SecurityGroupId,
    SpecModel,
    SubnetId,
    VpcEndpointId,
    VpcId,
    spec_invalid,
)

AwsService = Literal["s3", "sts", "kinesis-streams", "glue"]
DriftMode = Literal["remediate", "notify", "off"]
DEFAULT_AWS_SERVICES: tuple[AwsService, ...] = ("s3", "sts", "kinesis-streams")


class AdoptEndpoints(SpecModel):
    """Existing VPC endpoints to take over instead of creating new ones."""

    workspace: VpcEndpointId | None = None
    relay: VpcEndpointId | None = None
    front_end: VpcEndpointId | None = None


class EndpointsSection(SpecModel):
    aws_services: list[AwsService] = Field(default_factory=lambda: list(DEFAULT_AWS_SERVICES))
    s3_route_table_ids: list[RouteTableId] = []
    adopt: AdoptEndpoints = Field(default_factory=AdoptEndpoints)

    @field_validator("aws_services")
    @classmethod
    def _unique_services(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("list each service once")
        return value


class FrontEnd(SpecModel):
    """The user-to-workspace endpoint, usually in a transit VPC."""

    vpc_id: VpcId
    subnet_ids: list[SubnetId] = Field(min_length=1)
    security_group_id: SecurityGroupId


class DriftSection(SpecModel):
    mode: DriftMode = "remediate"


class WorkspaceSpec(SpecModel):
    """Everything one reconcile execution needs to know about one workspace."""

    workspace_key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{2,39}$")]
    region: Region
    databricks: DatabricksSection
    private_access: PrivateAccess = Field(default_factory=PrivateAccess)
    network: NetworkSection
    endpoints: EndpointsSection = Field(default_factory=EndpointsSection)
    front_end: FrontEnd | None = None
    dns: DnsSection | None = None
    drift: DriftSection = Field(default_factory=DriftSection)

    @model_validator(mode="after")
    def _cross_field(self) -> Self:
        if self.front_end is not None and self.front_end.vpc_id == self.network.vpc_id:
            raise ValueError(
                "front_end.vpc_id is the workspace VPC: the workspace endpoint there serves users too; "
                "remove the front_end section or use the transit VPC"
            )
        custom = self.dns.custom_dns if self.dns else None
        if custom and custom.dns_vpc_id in {self.network.vpc_id, *custom.associate_vpc_ids}:
            raise ValueError(
                f'dns.custom_dns: the "." rule would be associated with the DNS VPC {custom.dns_vpc_id}, whose '
                "corporate servers then forward to themselves through Route 53 (a loop); keep the DNS servers "
                "in their own VPC"
            )
        if self.front_end is None and self.endpoints.adopt.front_end is not None:
            raise ValueError("endpoints.adopt.front_end needs a front_end section describing its VPC")
        if (
            not self.private_access.public_access_enabled
            and self.private_access.level == "ENDPOINT"
            and self.front_end is None
            and not self.private_access.extra_allowed_vpc_endpoint_ids
        ):
            raise ValueError(
                "private_access: with public access off at ENDPOINT level no user could reach the workspace; "
                "add a front_end section, list extra_allowed_vpc_endpoint_ids, or use level ACCOUNT"
            )
        return self

    def execution_input(self) -> str:
        """The spec as the input of its reconcile execution (what `apply` sends to StartExecution)."""
        return json.dumps(self.model_dump(mode="json"))

    def canonical_json(self) -> str:
        """The spec as canonical JSON: equal specs give equal text (and so equal hashes)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """A short digest of the canonical spec; a change of spec changes it."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


# Step Functions caps an execution's input and the data of every state at 256 KiB (UTF-8). A run's state holds
# the spec up to three times (the input, the lease's copy, the spec a re-run takes) beside the steps' results,
# so a spec takes at most 40 KiB (120 KiB for its copies); the results keep the rest, the DNS verification of
# at most dns.spec.MAX_VERIFY_NAMES names (reported twice) the largest of them. A larger spec would fail
# mid-run with States.DataLimitExceeded.
STATE_DATA_LIMIT_BYTES = 256 * 1024
MAX_SPEC_BYTES = 40 * 1024


def _json_size(value: Any) -> int:
    return len(json.dumps(value).encode("utf-8"))


def largest_field(document: dict[str, Any]) -> tuple[str, int]:
    """The field that makes a document large, with its size in bytes: from the biggest top-level field down,
    as long as one part holds most of it (`dns.verify`, not one of its hundred names)."""
    path, value, size = "", document, _json_size(document)
    while isinstance(value, dict | list) and value:
        parts = value.items() if isinstance(value, dict) else enumerate(value)
        sized = [(key, part, _json_size(part)) for key, part in parts]
        key, part, part_size = max(sized, key=lambda item: item[2])
        if path and part_size * 2 <= size:
            break
        path = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        value, size = part, part_size
    return path, size


def _size_problem(spec: WorkspaceSpec) -> str | None:
    size = len(spec.execution_input().encode("utf-8"))
    if size <= MAX_SPEC_BYTES:
        return None
    field, field_size = largest_field(spec.model_dump(mode="json"))
    beyond = (
        f", over Step Functions' execution input limit of {STATE_DATA_LIMIT_BYTES:,} bytes (256 KiB) itself"
        if size > STATE_DATA_LIMIT_BYTES
        else ""
    )
    return (
        f"{field}: makes the spec too large: {size:,} bytes as execution input (UTF-8 JSON){beyond}, "
        f"{field_size:,} of them in this field; a spec may take {MAX_SPEC_BYTES:,} bytes (a run's state holds it "
        f"up to three times beside the steps' results, and Step Functions caps a state at "
        f"{STATE_DATA_LIMIT_BYTES:,}): shorten {field}"
    )


def input_problems(spec: WorkspaceSpec) -> list[str]:
    """What a spec that enters (apply, a run's preflight) is refused for beyond its model, each naming the field
    and the fix: too large for a run, allowed_cidrs wider than /16, dns.verify over its caps. The model alone
    still reads a spec an earlier version stored with them (status, drift, destroy go on working)."""
    problems = [p for p in [_size_problem(spec)] if p]
    return problems + (spec.dns.input_problems() if spec.dns else [])


SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema, generated from the model, for editors to check specs as they are typed."""
    return {
        "$schema": SCHEMA_DIALECT,
        "$comment": "Generated from dbx_privatelink.spec.WorkspaceSpec by `dbx-privatelink schema`: do not edit. "
        "Rules across fields and limits (distinct subnets, the DNS VPC apart, the spec's size, networks wider "
        "than /16 ...) are the CLI's and preflight's.",
        **WorkspaceSpec.model_json_schema(),
    }


def parse_spec(document: Any) -> WorkspaceSpec:
    """Validate a spec document (a dict from YAML or JSON); SpecInvalidError names every bad field."""
    if isinstance(document, dict) and "spec" in document and "workspace_key" not in document:
        document = document["spec"]  # an execution input that wraps the spec
    try:
        return WorkspaceSpec.model_validate(document)
    except ValidationError as exc:
        raise spec_invalid(exc) from None


def execution_name(workspace_key: str, generation: int, stamp: str) -> str:
    """The execution name for one apply: readable, unique per apply, at most 80 characters."""
    name = f"{workspace_key}-g{generation}-{stamp}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]
