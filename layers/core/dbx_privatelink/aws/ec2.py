"""The EC2 adapter: VPC, subnet, security group and VPC endpoint reads and writes."""

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from pydantic import BaseModel, ConfigDict

from dbx_privatelink.aws.errors import error_code, map_aws_error
from dbx_privatelink.errors import PrivateDnsConflictError

GONE_STATES = {"deleted", "deleting", "failed", "rejected", "expired"}


class VpcInfo(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    vpc_id: str
    cidr_block: str
    dns_support: bool
    dns_hostnames: bool

    @property
    def resolver_ip(self) -> str:
        """The VPC's own Route 53 Resolver: the CIDR base + 2."""
        return str(ipaddress.ip_network(self.cidr_block).network_address + 2)


class SubnetInfo(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    subnet_id: str
    vpc_id: str
    cidr_block: str
    availability_zone: str

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.cidr_block).prefixlen


class SgRule(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    protocol: str  # tcp | udp | -1
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    prefix_list_ids: tuple[str, ...] = ()

    def covers_port(self, protocol: str, port: int) -> bool:
        if self.protocol not in ("-1", protocol):
            return False
        if self.protocol == "-1" or self.from_port is None or self.to_port is None:
            return True
        if self.from_port == -1:
            return True
        return self.from_port <= port <= self.to_port


class SecurityGroupInfo(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    group_id: str
    vpc_id: str
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...]


class EndpointInfo(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    vpc_endpoint_id: str
    vpc_id: str
    service_name: str
    endpoint_type: str
    state: str
    private_dns_enabled: bool
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    tags: dict[str, str] = {}
    dns_ips: tuple[str, ...] = ()

    @property
    def gone(self) -> bool:
        return self.state.lower() in GONE_STATES


def _rules(permissions: list[dict[str, Any]]) -> tuple[SgRule, ...]:
    return tuple(
        SgRule(
            protocol=str(p.get("IpProtocol", "-1")),
            from_port=p.get("FromPort"),
            to_port=p.get("ToPort"),
            cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges", [])),
            prefix_list_ids=tuple(r["PrefixListId"] for r in p.get("PrefixListIds", [])),
            group_ids=tuple(g["GroupId"] for g in p.get("UserIdGroupPairs", [])),
        )
        for p in permissions
    )


def _endpoint(raw: dict[str, Any]) -> EndpointInfo:
    return EndpointInfo(
        vpc_endpoint_id=raw["VpcEndpointId"],
        vpc_id=raw["VpcId"],
        service_name=raw["ServiceName"],
        endpoint_type=raw.get("VpcEndpointType", "Interface"),
        state=str(raw.get("State", "")),
        private_dns_enabled=bool(raw.get("PrivateDnsEnabled", False)),
        subnet_ids=tuple(raw.get("SubnetIds", [])),
        security_group_ids=tuple(g["GroupId"] for g in raw.get("Groups", [])),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
    )


@contextmanager
def _mapped(operation: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise map_aws_error(exc, operation) from exc


class Ec2Client:
    """EC2 calls the reconciler makes; every botocore error leaves as a domain error."""

    def __init__(self, client: Any) -> None:
        self._ec2 = client

    def get_vpc(self, vpc_id: str) -> VpcInfo | None:
        try:
            vpcs = self._ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        except ClientError as exc:
            if error_code(exc) == "InvalidVpcID.NotFound":
                return None
            raise map_aws_error(exc, "DescribeVpcs") from exc
        with _mapped("DescribeVpcAttribute"):
            support = self._ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")
            hostnames = self._ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")
        return VpcInfo(
            vpc_id=vpc_id,
            cidr_block=vpcs[0]["CidrBlock"],
            dns_support=bool(support["EnableDnsSupport"]["Value"]),
            dns_hostnames=bool(hostnames["EnableDnsHostnames"]["Value"]),
        )

    def get_subnets(self, subnet_ids: list[str]) -> list[SubnetInfo]:
        """The subnets that exist among `subnet_ids` (missing ones are simply absent)."""
        found: list[SubnetInfo] = []
        with _mapped("DescribeSubnets"):
            raw = self._ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnet_ids}])["Subnets"]
        for s in raw:
            found.append(
                SubnetInfo(
                    subnet_id=s["SubnetId"],
                    vpc_id=s["VpcId"],
                    cidr_block=s["CidrBlock"],
                    availability_zone=s["AvailabilityZone"],
                )
            )
        return found

    def get_security_groups(self, group_ids: list[str]) -> list[SecurityGroupInfo]:
        """The security groups that exist among `group_ids`, with their rules."""
        with _mapped("DescribeSecurityGroups"):
            raw = self._ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": group_ids}])[
                "SecurityGroups"
            ]
        return [
            SecurityGroupInfo(
                group_id=g["GroupId"],
                vpc_id=g["VpcId"],
                ingress=_rules(g.get("IpPermissions", [])),
                egress=_rules(g.get("IpPermissionsEgress", [])),
            )
            for g in raw
        ]

    def known_services(self, service_names: list[str]) -> set[str]:
        """Which of `service_names` the region offers as VPC endpoint services."""
        with _mapped("DescribeVpcEndpointServices"):
            try:
                raw = self._ec2.describe_vpc_endpoint_services(ServiceNames=service_names)
            except ClientError as exc:
                if error_code(exc) == "InvalidServiceName":
                    raw = {"ServiceDetails": []}
                else:
                    raise
        return {d["ServiceName"] for d in raw.get("ServiceDetails", [])} & set(service_names)

    def find_endpoints(
        self, vpc_id: str, service_name: str | None = None, *, include_gone: bool = False
    ) -> list[EndpointInfo]:
        """Endpoints of a VPC (optionally of one service), gone ones excluded unless asked for."""
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        if service_name:
            filters.append({"Name": "service-name", "Values": [service_name]})
        with _mapped("DescribeVpcEndpoints"):
            raw = self._ec2.describe_vpc_endpoints(Filters=filters)["VpcEndpoints"]
        return [e for e in (_endpoint(r) for r in raw) if include_gone or not e.gone]

    def get_endpoints(self, endpoint_ids: list[str]) -> dict[str, EndpointInfo]:
        """Endpoints by id; an id that EC2 does not know (yet, or any more) is absent from the result."""
        if not endpoint_ids:
            return {}
        try:
            raw = self._ec2.describe_vpc_endpoints(VpcEndpointIds=endpoint_ids)["VpcEndpoints"]
        except ClientError as exc:
            if error_code(exc) != "InvalidVpcEndpointId.NotFound" or len(endpoint_ids) == 1:
                if error_code(exc) == "InvalidVpcEndpointId.NotFound":
                    return {}
                raise map_aws_error(exc, "DescribeVpcEndpoints") from exc
            # One unknown id fails the whole call: ask for each id alone.
            found: dict[str, EndpointInfo] = {}
            for endpoint_id in endpoint_ids:
                found.update(self.get_endpoints([endpoint_id]))
            return found
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_aws_error(exc, "DescribeVpcEndpoints") from exc
        return {e.vpc_endpoint_id: e for e in (_endpoint(r) for r in raw)}

    def create_endpoint(
        self,
        *,
        vpc_id: str,
        service_name: str,
        endpoint_type: str,
        subnet_ids: list[str],
        security_group_ids: list[str],
        route_table_ids: list[str],
        private_dns_enabled: bool,
        client_token: str,
        tags: dict[str, str],
    ) -> EndpointInfo:
        params: dict[str, Any] = {
            "VpcId": vpc_id,
            "ServiceName": service_name,
            "VpcEndpointType": endpoint_type,
            "ClientToken": client_token,
            "TagSpecifications": [
                {"ResourceType": "vpc-endpoint", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        }
        if endpoint_type == "Interface":
            params.update(
                SubnetIds=subnet_ids,
                SecurityGroupIds=security_group_ids,
                PrivateDnsEnabled=private_dns_enabled,
            )
        else:
            params["RouteTableIds"] = route_table_ids
        try:
            raw = self._ec2.create_vpc_endpoint(**params)["VpcEndpoint"]
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if error_code(exc) == "InvalidParameter" and "conflicting DNS domain" in message:
                raise PrivateDnsConflictError(f"CreateVpcEndpoint failed: {message}") from exc
            raise map_aws_error(exc, "CreateVpcEndpoint") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_aws_error(exc, "CreateVpcEndpoint") from exc
        return _endpoint(raw)

    def set_private_dns(self, endpoint_id: str, enabled: bool) -> None:
        with _mapped("ModifyVpcEndpoint"):
            self._ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PrivateDnsEnabled=enabled)

    def add_security_groups(self, endpoint_id: str, group_ids: list[str]) -> None:
        with _mapped("ModifyVpcEndpoint"):
            self._ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, AddSecurityGroupIds=group_ids)

    def tag(self, resource_id: str, tags: dict[str, str]) -> None:
        with _mapped("CreateTags"):
            self._ec2.create_tags(
                Resources=[resource_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    def main_route_table(self, vpc_id: str) -> str | None:
        with _mapped("DescribeRouteTables"):
            raw = self._ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"]
        return raw[0]["RouteTableId"] if raw else None

    # --- decommission ------------------------------------------------------------------------------

    def delete_endpoints(self, endpoint_ids: list[str]) -> dict[str, str]:
        """Delete the endpoints in one DeleteVpcEndpoints call (one token of EC2's endpoint bucket).
        AWS answers per endpoint in `Unsuccessful` rather than failing the call: those come back as
        {id: "Code: message"}; an id AWS no longer knows is not a failure (it is gone)."""
        if not endpoint_ids:
            return {}
        with _mapped("DeleteVpcEndpoints"):
            raw = self._ec2.delete_vpc_endpoints(VpcEndpointIds=endpoint_ids)
        failed: dict[str, str] = {}
        for item in raw.get("Unsuccessful", []):
            error = item.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("InvalidVpcEndpoint.NotFound", "InvalidVpcEndpointId.NotFound"):
                continue
            failed[str(item.get("ResourceId", ""))] = f"{code}: {error.get('Message', '')}"
        return failed

    def group_permissions(self, group_id: str) -> dict[str, list[dict[str, Any]]] | None:
        """The group's raw permissions by direction ("ingress", "egress"), descriptions included; None when
        the group does not exist."""
        with _mapped("DescribeSecurityGroups"):
            raw = self._ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])[
                "SecurityGroups"
            ]
        raw = [g for g in raw if g.get("GroupId") == group_id]
        if not raw:
            return None
        return {"ingress": raw[0].get("IpPermissions", []), "egress": raw[0].get("IpPermissionsEgress", [])}

    def revoke_permissions(self, group_id: str, direction: str, permissions: list[dict[str, Any]]) -> None:
        """Remove exactly these permissions; one already gone is not an error (EC2 refuses the whole call
        then, so they are revoked one at a time after such a refusal)."""
        if not permissions:
            return
        call = (
            self._ec2.revoke_security_group_ingress
            if direction == "ingress"
            else self._ec2.revoke_security_group_egress
        )
        operation = "RevokeSecurityGroup" + direction.capitalize()
        try:
            call(GroupId=group_id, IpPermissions=permissions)
        except ClientError as exc:
            code = error_code(exc)
            if code == "InvalidGroup.NotFound":
                return
            if code != "InvalidPermission.NotFound":
                raise map_aws_error(exc, operation) from exc
            if len(permissions) > 1:
                for permission in permissions:
                    self.revoke_permissions(group_id, direction, [permission])
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_aws_error(exc, operation) from exc
