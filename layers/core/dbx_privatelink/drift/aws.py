"""The few EC2 writes a remediation makes before the reconcile runs: restore what preflight requires of the
customer's VPC and security groups (the state machine's preflight only checks, it never changes them)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import error_code, map_aws_error


class DriftEc2Client:
    """Authorize a security-group rule, turn a VPC DNS attribute back on."""

    def __init__(self, client: Any) -> None:
        self._ec2 = client

    def authorize(self, group_id: str, direction: str, permission: dict[str, Any]) -> bool:
        """Add one rule; False when it already exists."""
        call = (
            self._ec2.authorize_security_group_ingress
            if direction == "ingress"
            else self._ec2.authorize_security_group_egress
        )
        operation = "AuthorizeSecurityGroup" + direction.capitalize()
        try:
            call(GroupId=group_id, IpPermissions=[permission])
        except ClientError as exc:
            if error_code(exc) == "InvalidPermission.Duplicate":
                return False
            raise map_aws_error(exc, operation) from exc
        except BotoCoreError as exc:
            raise map_aws_error(exc, operation) from exc
        return True

    def enable_vpc_attribute(self, vpc_id: str, attribute: str) -> None:
        """Turn enableDnsSupport or enableDnsHostnames on."""
        key = {"enableDnsSupport": "EnableDnsSupport", "enableDnsHostnames": "EnableDnsHostnames"}[attribute]
        try:
            self._ec2.modify_vpc_attribute(VpcId=vpc_id, **{key: {"Value": True}})
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, "ModifyVpcAttribute") from exc
