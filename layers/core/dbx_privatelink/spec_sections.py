"""The spec's sections that the Databricks objects are made from: the Databricks account and workspace, the
private access settings and the network (with the spec's id types), and a view of a spec document that reads
its key, region and network alone (SpecNetwork: what recording a run and a drift repair read). Apart from
spec.py, so that these steps create these models and not the whole spec's."""

from typing import Annotated, Any, Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dbx_privatelink.errors import SpecInvalidError

VpcId = Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]
VpcEndpointId = Annotated[str, Field(pattern=r"^vpce-[0-9a-f]{8,17}$")]
RouteTableId = Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{8,17}$")]
Region = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
DatabricksId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
AccountId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


# Hints appended to pydantic's messages so every error names the fix, not just the problem.
_FIX_HINTS: dict[str, str] = {
    "workspace_key": "use 3-40 lowercase letters, digits and hyphens, starting with a letter",
    "region": "use an AWS region code such as us-east-1",
    "account_id": "use the Databricks account id (a UUID) shown in the account console",
    "vpc_id": "use a VPC id such as vpc-0a1b2c3d4e5f60718",
    "subnet": "use subnet ids such as subnet-0a1b2c3d4e5f60718",
    "security_group": "use security group ids such as sg-0a1b2c3d4e5f60718",
    "adopt": "use VPC endpoint ids such as vpce-0a1b2c3d4e5f60718",
    "route_table": "use route table ids such as rtb-0a1b2c3d4e5f60718",
    "aws_services": "choose from s3, sts, kinesis-streams, glue",
    "level": "use ACCOUNT or ENDPOINT",
    "mode": "use remediate, notify or off",
    "aws_names": "use system-rule or forward-to-dns-vpc-resolver",
    "hosted_zone": "use a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ (the id, not the zone's name)",
}


def _hint_for(loc: tuple[str | int, ...]) -> str:
    for part in reversed(loc):
        if isinstance(part, str):
            for key, hint in _FIX_HINTS.items():
                if key in part:
                    return hint
    return ""


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field: remove it or check its spelling against the spec reference in README.md"
    elif error["type"] == "missing":
        message = "required field is missing: add it"
    hint = _hint_for(loc) if error["type"] in {"string_pattern_mismatch", "literal_error"} else ""
    return f"{where}: {message}" + (f" (fix: {hint})" if hint else "")


def spec_invalid(exc: ValidationError) -> SpecInvalidError:
    """The error for a spec document the models refused: every bad field, each with its fix."""
    lines = [_describe(e) for e in exc.errors()]
    return SpecInvalidError("Invalid workspace spec:\n- " + "\n- ".join(lines))


class SpecModel(BaseModel):
    """The base of the spec's models: unknown fields refused, frozen, built on first use."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class WorkspaceTarget(SpecModel):
    """Create a new workspace (name), or retrofit PrivateLink onto an existing one (existing_workspace_id)."""

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    deployment_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] | None = None
    existing_workspace_id: Annotated[int, Field(gt=0)] | None = None
    pricing_tier: Literal["PREMIUM", "ENTERPRISE"] = "ENTERPRISE"
    custom_tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _create_or_adopt(self) -> Self:
        if self.name is None and self.existing_workspace_id is None:
            raise ValueError(
                "set name to create a new workspace, or existing_workspace_id to retrofit an existing one"
            )
        return self


class DatabricksSection(SpecModel):
    account_id: AccountId
    credentials_id: DatabricksId
    storage_configuration_id: DatabricksId
    workspace: WorkspaceTarget


class PrivateAccess(SpecModel):
    public_access_enabled: bool = False
    level: Literal["ACCOUNT", "ENDPOINT"] = "ACCOUNT"
    # Databricks registration ids allowed besides the ones this application registers (ENDPOINT level).
    extra_allowed_vpc_endpoint_ids: list[DatabricksId] = []


def _listed_once(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("list each id once")
    return value


MAX_GROUPS_PER_INTERFACE = 5  # security groups per network interface (VPC quota, default)


class WorkspaceSet(NamedTuple):
    """One set of workspace subnets and security groups a network object can be built on."""

    spec_field: str  # where the spec names it: "network" or "network.standby"
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


class StandbyNetwork(SpecModel):
    """A second, pre-provisioned set of workspace subnets and groups in the same VPC. Databricks lets a
    subnet or group serve one network object only, so a network that must be replaced while the workspace
    uses it (its endpoints were recreated) is built on the set the workspace does not use."""

    workspace_subnet_ids: list[SubnetId] = Field(min_length=2)
    workspace_security_group_ids: list[SecurityGroupId] = Field(min_length=1, max_length=5)

    _unique = field_validator("workspace_subnet_ids", "workspace_security_group_ids")(_listed_once)


class NetworkSection(SpecModel):
    vpc_id: VpcId
    workspace_subnet_ids: list[SubnetId] = Field(min_length=2)
    workspace_security_group_ids: list[SecurityGroupId] = Field(min_length=1, max_length=5)
    endpoint_subnet_ids: list[SubnetId] = Field(min_length=1, max_length=16)
    endpoint_security_group_id: SecurityGroupId
    standby: StandbyNetwork | None = None

    _unique = field_validator("workspace_subnet_ids", "workspace_security_group_ids", "endpoint_subnet_ids")(
        _listed_once
    )

    @model_validator(mode="after")
    def _endpoint_subnets_apart(self) -> Self:
        shared = set(self.endpoint_subnet_ids) & set(self.workspace_subnet_ids)
        if shared:
            raise ValueError(
                f"endpoint_subnet_ids {sorted(shared)} are also workspace subnets: give the endpoints their "
                "own subnet (the seed's databricks-vpce) so cluster IPs never exhaust it"
            )
        return self

    @model_validator(mode="after")
    def _standby_apart(self) -> Self:
        standby = self.standby
        if standby is None:
            return self
        problems = []
        if shared := sorted(set(standby.workspace_subnet_ids) & set(self.workspace_subnet_ids)):
            problems.append(
                f"standby.workspace_subnet_ids {shared} are also in workspace_subnet_ids: give the standby "
                "set subnets of its own (Databricks lets a subnet serve one network object only)"
            )
        if shared := sorted(
            set(standby.workspace_security_group_ids) & set(self.workspace_security_group_ids)
        ):
            problems.append(
                f"standby.workspace_security_group_ids {shared} are also in workspace_security_group_ids: give "
                "the standby set groups of its own (Databricks lets a group serve one network object only)"
            )
        if shared := sorted(set(standby.workspace_subnet_ids) & set(self.endpoint_subnet_ids)):
            problems.append(
                f"standby.workspace_subnet_ids {shared} are also endpoint_subnet_ids: give the endpoints their "
                "own subnet so cluster IPs never exhaust it"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def workspace_sets(self) -> list[WorkspaceSet]:
        """The sets a network object can be built on: the primary one first, then the standby one."""
        sets = [
            WorkspaceSet(
                "network", tuple(self.workspace_subnet_ids), tuple(self.workspace_security_group_ids)
            )
        ]
        if self.standby is not None:
            sets.append(
                WorkspaceSet(
                    "network.standby",
                    tuple(self.standby.workspace_subnet_ids),
                    tuple(self.standby.workspace_security_group_ids),
                )
            )
        return sets

    def all_workspace_subnet_ids(self) -> list[str]:
        """The workspace subnets of every set (the workspace runs on one, a replacement uses the other)."""
        return [s for ws in self.workspace_sets() for s in ws.subnet_ids]

    def all_workspace_security_group_ids(self) -> list[str]:
        """The workspace security groups of every set."""
        return [g for ws in self.workspace_sets() for g in ws.security_group_ids]


class SpecNetwork(BaseModel):
    """A spec document's key, region and network section. The spec was validated in full where it entered;
    the network section, read throughout, is validated again here and the other sections are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    workspace_key: str
    region: str
    network: NetworkSection


def spec_network(document: dict[str, Any]) -> SpecNetwork:
    """The key, region and network of a spec document; SpecInvalidError names every bad field."""
    try:
        return SpecNetwork.model_validate(document)
    except ValidationError as exc:
        raise spec_invalid(exc) from None
