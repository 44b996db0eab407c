"""The Route 53 private hosted zone adapter: read a zone and its VPCs, associate a VPC with it.

Route 53 is a global service: one client serves every region; a VPC is named with its region.
GetHostedZone lists a private zone's VPCs (every region). AssociateVPCWithHostedZone answers a change that
is PENDING until the association is in sync in every Route 53 location (typically seconds).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from pydantic import BaseModel, ConfigDict

from dbx_privatelink import errors
from dbx_privatelink.aws.errors import error_code, map_aws_error


class HostedZoneInfo(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    zone_id: str
    name: str
    private: bool
    vpcs: frozenset[tuple[str, str]] = frozenset()  # (vpc_id, region)

    def associated(self, vpc_id: str, region: str) -> bool:
        return (vpc_id, region) in self.vpcs


@contextmanager
def _call(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if error_code(exc) == "ConflictingDomainExists":
            raise errors.ResourceConflictError(
                f"{operation}: the VPC is already associated with another private hosted zone of the same "
                f"name, or the zone's name overlaps one the VPC uses ({exc}); remove the other association "
                "or list that zone in dns.private_zones instead"
            ) from exc
        if error_code(exc) == "NotAuthorizedException":
            raise errors.AwsAccessDeniedError(
                f"{operation}: the zone and the VPC are in different accounts ({exc}); the zone's owner must "
                "first run CreateVPCAssociationAuthorization for the VPC"
            ) from exc
        raise map_aws_error(exc, operation) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        raise map_aws_error(exc, operation) from exc


def _zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1]


class HostedZoneClient:
    def __init__(self, route53: Any) -> None:
        self._route53 = route53

    def get(self, zone_id: str) -> HostedZoneInfo | None:
        """The zone with its VPC associations, or None when no zone has this id."""
        try:
            with _call("GetHostedZone"):
                raw = self._route53.get_hosted_zone(Id=zone_id)
        except errors.AwsRequestError as exc:
            if "NoSuchHostedZone" in str(exc):
                return None
            raise
        zone = raw["HostedZone"]
        return HostedZoneInfo(
            zone_id=_zone_id(zone["Id"]),
            name=zone["Name"].rstrip(".").lower() or ".",
            private=bool(zone.get("Config", {}).get("PrivateZone")),
            vpcs=frozenset((v["VPCId"], v.get("VPCRegion", "")) for v in raw.get("VPCs", [])),
        )

    def associate(self, zone_id: str, vpc_id: str, region: str) -> str:
        """Associate the VPC with the private zone; returns the change's id (GetChange tells when it is INSYNC)."""
        with _call("AssociateVPCWithHostedZone"):
            raw = self._route53.associate_vpc_with_hosted_zone(
                HostedZoneId=zone_id,
                VPC={"VPCRegion": region, "VPCId": vpc_id},
                Comment="dbx-privatelink: dns.private_zones",
            )
        return str(raw["ChangeInfo"]["Id"])

    def change_status(self, change_id: str) -> str:
        """PENDING while Route 53 propagates the change, INSYNC once every location applied it."""
        with _call("GetChange"):
            return str(self._route53.get_change(Id=change_id)["ChangeInfo"]["Status"])
